"""The toy latent world: a latent diffusion model of the toy world's scenes, trained on this machine by
:mod:`.train_vae` and :mod:`.train_latent_unet`, shipped as a ``save_pretrained`` folder and read back
by :func:`toy_latent_models` through :func:`~blendlab.latent.models.load_latent_models` (the Hub's code
path).

What both training scripts share lives here: the folder the weights ship in (:data:`TOY_LATENT`, with
one JSON card per phase beside the components), the component configurations (32 px RGB -> 4 × 8 × 8
latents, f = 4), and the captioned training data: :func:`captioned_batch` draws toy-world scenes and
names *one* of their objects ("a red circle", or colour only: "a red shape"), so a caption means "the
scene holds a red circle" — what a blended edit asks of the masked region when the rest of the scene
is given.

May import: errors, latent.models, toyworld.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import WeightsNotFoundError
from ..toyworld.world import DEFAULT_SIZE, caption, random_layout, render_scene
from .models import LatentModels, default_device, load_latent_models

__all__ = ["TOY_LATENT", "TOY_LATENT_COMMANDS", "vae_config", "unet_config", "text_config", "TOKENS",
           "captioned_batch", "scene_caption_of", "toy_latent_models", "toy_latent_card"]

#: Where the toy latent world ships: vae/, unet/, scheduler/, tokenizer/, text_encoder/ and the cards.
TOY_LATENT = Path(__file__).resolve().parent / "weights" / "toy"
#: The commands that make each phase's weights (the cards record the exact arguments).
TOY_LATENT_COMMANDS = {"vae": "python -m blendlab.latent.train_vae",
                       "unet": "python -m blendlab.latent.train_latent_unet"}
#: Token length of the toy text encoder: "a yellow triangle" is 17 characters plus start and end.
TOKENS = 24


def vae_config() -> dict:
    """The toy ``AutoencoderKL``: three blocks (16, 32, 32 channels), two downsamplings (f = 4)."""
    return dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 32), layers_per_block=1,
                latent_channels=4, norm_num_groups=8, sample_size=DEFAULT_SIZE)


def unet_config(width: int = 64, text_dim: int = 64) -> dict:
    """The toy ``UNet2DConditionModel`` on 8 × 8 latents: two levels, cross-attention at both."""
    return dict(sample_size=DEFAULT_SIZE // 4, in_channels=4, out_channels=4,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                block_out_channels=(width, 2 * width), layers_per_block=1, cross_attention_dim=text_dim,
                attention_head_dim=8, norm_num_groups=16)


def text_config(vocab_size: int, bos: int, eos: int, width: int = 64) -> dict:
    """The toy ``CLIPTextModel``: two layers over :data:`TOKENS` byte-level characters."""
    return dict(vocab_size=vocab_size, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=TOKENS, bos_token_id=bos, eos_token_id=eos,
                pad_token_id=eos)


def scene_caption_of(objects, rng: np.random.Generator, colour_only: float = 0.25) -> str:
    """One object of ``objects`` named at random: "a red circle", or "a red shape" with probability
    ``colour_only``; "" for an empty scene."""
    if not objects:
        return ""
    obj = objects[int(rng.integers(len(objects)))]
    return f"a {obj.colour} shape" if rng.random() < colour_only else caption(obj.colour, obj.shape)


def captioned_batch(seed: int, step: int, batch: int, dropout: float = 0.0, salt: int = 1,
                    ) -> tuple[torch.Tensor, list[str]]:
    """One step's data, a pure function of (seed, step, salt): ``batch`` random toy scenes (B, 3, 32, 32)
    in [-1, 1] and their captions (:func:`scene_caption_of`), each replaced by "" with probability
    ``dropout`` (caption dropout, for classifier-free guidance)."""
    rng = np.random.default_rng([seed, step, salt])
    images, captions = [], []
    for _ in range(batch):
        objects, background = random_layout(rng)
        images.append(render_scene(objects, DEFAULT_SIZE, background))
        text = scene_caption_of(objects, rng)
        captions.append("" if rng.random() < dropout else text)
    return torch.cat(images), captions


def toy_latent_card(phase: str, folder: Path | None = None) -> dict:
    """The JSON card of one phase ("vae" or "unet") of the shipped toy latent world."""
    path = Path(folder or TOY_LATENT) / f"toy_latent_{phase}.json"
    if not path.is_file():
        raise WeightsNotFoundError(f"the toy latent world's {phase} card is missing ({path}); reinstall blendlab, "
                                   f"or train it with `{TOY_LATENT_COMMANDS[phase]}` (docs/latent-training.md)")
    return json.loads(path.read_text())


def toy_latent_models(device=None, folder: Path | None = None) -> LatentModels:
    """The shipped toy latent world (float32), read by :func:`load_latent_models` from its
    ``save_pretrained`` folder, offline. Raises :class:`WeightsNotFoundError` naming the training
    commands when the folder is missing or incomplete."""
    folder = Path(folder or TOY_LATENT)
    try:
        models = load_latent_models(folder, device=device or default_device(), dtype=torch.float32,
                                    progress=False, local_files_only=True)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(f"{exc}. The toy latent world is made by `{TOY_LATENT_COMMANDS['vae']}` then "
                                   f"`{TOY_LATENT_COMMANDS['unet']}` (docs/latent-training.md)") from None
    return dataclasses.replace(models, name="toy-latent")
