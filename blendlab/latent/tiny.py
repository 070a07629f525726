"""The tiny latent preset: Stable Diffusion's component classes with tiny configurations and seeded
random weights, for tests of the mechanics (never of whether an edit works).

32 px images; an ``AutoencoderKL`` with three blocks (8, 16, 16 channels) maps them to 4-channel
latents of 8 × 8 (f = 4); a two-block ``UNet2DConditionModel`` (16, 32 channels, cross-attention to
32-dimensional text embeddings); Stable Diffusion's DDIM schedule (scaled linear β from 0.00085 to
0.012, no clipping, ``set_alpha_to_one=False``, ``steps_offset=1``); a two-layer ``CLIPTextModel``
with a byte-level ``CLIPTokenizer`` of single characters (no merges) and 16 tokens. Save it with
``tiny_latent_models().save_pretrained(path)`` and read it back with
:func:`blendlab.latent.models.load_latent_models` — the Hub's code path.

May import: errors, latent.models.
"""

from __future__ import annotations

import torch

from .models import CLIPPromptEncoder, LatentModels, default_device, frozen

__all__ = ["tiny_latent_models", "byte_tokenizer", "ddim_scheduler", "SD_SCHEDULE", "TINY_IMAGE_SIZE"]

TINY_IMAGE_SIZE = 32
_TOKENS = 16
#: Stable Diffusion's 1000-step schedule: scaled linear β from 0.00085 to 0.012.
SD_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def ddim_scheduler():
    """Stable Diffusion's DDIM scheduler (:data:`SD_SCHEDULE`, no clipping, ``set_alpha_to_one=False``,
    ``steps_offset=1``): the tiny preset's, and the one the toy latent world trains on and ships."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SD_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def byte_tokenizer(max_length: int = _TOKENS):
    """A CLIP tokenizer whose vocabulary is the 256 byte-level characters, each also as a word end
    (``"a</w>"``), and the start/end tokens: 514 entries, no merges; ``max_length`` tokens."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def tiny_latent_models(seed: int = 0, device=None, dtype: torch.dtype = torch.float32) -> LatentModels:
    """The tiny preset (see the module docstring), its weights drawn from ``torch.manual_seed(seed)``
    on the CPU (same seed, same weights), then moved to ``device`` (default CUDA when present)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    device = default_device() if device is None else torch.device(device)
    tokenizer = byte_tokenizer()
    rng_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                            up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16),
                            layers_per_block=1, latent_channels=4, norm_num_groups=4,
                            sample_size=TINY_IMAGE_SIZE)
        unet = UNet2DConditionModel(sample_size=TINY_IMAGE_SIZE // 4, in_channels=4, out_channels=4,
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                    block_out_channels=(16, 32), layers_per_block=1, cross_attention_dim=32,
                                    attention_head_dim=4, norm_num_groups=8)
        ids = tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=_TOKENS, bos_token_id=ids[0], eos_token_id=ids[1],
            pad_token_id=ids[1]))
    finally:
        torch.random.set_rng_state(rng_state)  # building the preset leaves the global generator alone
    scheduler = ddim_scheduler()
    text = CLIPPromptEncoder(tokenizer, frozen(text_encoder, device, dtype))
    return LatentModels(vae=frozen(vae, device, dtype), unet=frozen(unet, device, dtype), scheduler=scheduler,
                        text=text, device=device, dtype=dtype, name="tiny-latent")
