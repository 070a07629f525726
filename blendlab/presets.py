"""What each model preset is, and how its networks are built with random weights.

A preset names a UNet configuration (on top of guided_diffusion's ``model_and_diffusion_defaults``),
where its checkpoint comes from, and a description: ``"256-uncond"`` (the paper's model),
``"512-cond"``, ``"toy"`` (trained here on the toy world, weights shipped with blendlab), and the
random-weight stand-ins ``"tiny"`` and ``"tiny-cond"``. Every preset shares one diffusion (1000
linear steps, learned sigmas). :func:`build_unet` and :func:`build_tiny_clip` make the networks;
loading trained weights into them is :mod:`blendlab.checkpoints`' job, and
:func:`blendlab.models.load_models` puts it together.

May import: errors, download.
"""

from __future__ import annotations

from typing import Any

import torch

from .download import RemoteFile
from .errors import InputError

__all__ = ["PRESETS", "TINY_CLIP", "check_preset", "unet_config", "diffusion_config", "build_unet",
           "build_tiny_unet", "build_tiny_clip", "count_parameters", "image_size", "output_size", "preset_for_size",
           "TINY_SETTINGS", "LESSON_BATCH", "TOY_SETTINGS", "TOY_PRESET", "REAL_PRESET", "settings_for"]


#: The reference implementation's model flags (omriav/blended-diffusion, ImageEditor.__init__),
#: on top of guided_diffusion's ``model_and_diffusion_defaults()``.
_REFERENCE_UNET = dict(
    attention_resolutions="32, 16, 8",
    num_channels=256,
    num_head_channels=64,
    num_res_blocks=2,
    resblock_updown=True,
    use_scale_shift_norm=True,
    learn_sigma=True,
)

#: The diffusion every preset shares: 1000 linear steps, learned sigmas, rescaled timesteps.
_DIFFUSION = dict(
    steps=1000,
    learn_sigma=True,
    sigma_small=False,
    noise_schedule="linear",
    use_kl=False,
    predict_xstart=False,
    rescale_timesteps=True,
    rescale_learned_sigmas=False,
)

#: The tiny stand-in: the same UNet class and options at toy size (32 px, 32 channels).
_TINY_UNET = dict(
    image_size=32,
    num_channels=32,
    num_res_blocks=1,
    channel_mult="1,2",
    attention_resolutions="16",
    num_head_channels=16,
    resblock_updown=True,
    use_scale_shift_norm=True,
    learn_sigma=True,
)

#: The toy world's UNet (trained here on procedural scenes of coloured shapes, see blendlab.toyworld):
#: the same UNet class at 32 px, 1.4 M parameters.
_TOY_UNET = dict(
    image_size=32,
    num_channels=32,
    num_res_blocks=1,
    channel_mult="1,2,2",
    attention_resolutions="8",
    num_head_channels=32,
    resblock_updown=True,
    use_scale_shift_norm=True,
    learn_sigma=True,
    dropout=0.0,
)

_OFFICIAL = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"

PRESETS: dict[str, dict[str, Any]] = {
    "256-uncond": dict(
        unet=dict(_REFERENCE_UNET, image_size=256, class_cond=False),
        checkpoint=RemoteFile(
            filename="256x256_diffusion_uncond.pt",
            urls=(
                _OFFICIAL + "256x256_diffusion_uncond.pt",
                # The mirror the reference implementation's README points to.
                "https://huggingface.co/omriav/blended-diffusion/resolve/main/checkpoints/"
                "256x256_diffusion_uncond.pt?download=true",
            ),
            description="guided-diffusion 256x256 unconditional ImageNet UNet",
        ),
        description="guided-diffusion 256x256 unconditional ImageNet model (the paper's model)",
    ),
    "512-cond": dict(
        unet=dict(_REFERENCE_UNET, image_size=512, class_cond=True),
        checkpoint=RemoteFile(
            filename="512x512_diffusion.pt",
            urls=(_OFFICIAL + "512x512_diffusion.pt",),
            description="guided-diffusion 512x512 class-conditional ImageNet UNet",
        ),
        description="guided-diffusion 512x512 class-conditional ImageNet model (random class each step)",
    ),
    "toy": dict(
        unet=dict(_TOY_UNET, class_cond=False),
        checkpoint=None,
        packaged=True,
        description="toy world: UNet + CLIP trained here on coloured shapes (CPU, offline, shipped weights)",
    ),
    "tiny": dict(
        unet=dict(_TINY_UNET, class_cond=False),
        checkpoint=None,
        description="tiny random-weight stand-in (mechanics only, CPU, offline)",
    ),
    "tiny-cond": dict(
        unet=dict(_TINY_UNET, class_cond=True),
        checkpoint=None,
        description="tiny class-conditional stand-in for the 512-cond code path (mechanics only)",
    ),
}

#: Tiny CLIP hyper-parameters: widths of 64 so that ``clip.model.build_model`` can re-infer the
#: architecture from a saved state dict (it assumes 64 channels per attention head).
TINY_CLIP = dict(
    embed_dim=32,
    image_resolution=32,
    vision_layers=1,
    vision_width=64,
    vision_patch_size=8,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=1,
)

#: Seed of the tiny networks' random initialisation (the UNet; CLIP uses TINY_SEED + 1).
TINY_SEED = 0


def unet_config(preset: str) -> dict:
    """``create_model`` keyword arguments of a preset (guided_diffusion defaults + the preset's flags)."""
    check_preset(preset)
    import inspect

    from guided_diffusion.script_util import create_model, model_and_diffusion_defaults

    names = set(inspect.signature(create_model).parameters)
    cfg = {k: v for k, v in model_and_diffusion_defaults().items() if k in names}
    cfg.update(PRESETS[preset]["unet"])
    cfg["use_fp16"] = False  # load_models sets it from the device
    return cfg


def diffusion_config() -> dict:
    """``create_gaussian_diffusion`` keyword arguments shared by every preset (respacing excluded)."""
    return dict(_DIFFUSION)


def build_unet(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the guided_diffusion UNet of ``config`` (random weights) on ``device`` ("meta" works)."""
    from guided_diffusion.script_util import create_model

    with torch.device(device):
        return create_model(**config)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def image_size(preset: str) -> int:
    """The size (px) ``preset``'s models work at, read from :data:`PRESETS` (nothing is loaded):
    what a front door checks inputs against before the models exist."""
    check_preset(preset)
    return int(PRESETS[preset]["unet"]["image_size"])


def output_size(preset: str) -> int | None:
    """The ``model_output_size`` an edit on ``preset`` uses: a real preset's image size (256, 512);
    None for the small presets, which work at 32 px whatever the setting (EditConfig's default
    stays). The one place that maps presets to sizes (the CLI, the notebooks and the EditorApp read it)."""
    size = image_size(preset)  # checks the name first
    return size if PRESETS[preset]["checkpoint"] is not None else None


def preset_for_size(size: int) -> str | None:
    """The real preset that works at ``size`` px (256 -> "256-uncond", 512 -> "512-cond"), or None."""
    return next((name for name in PRESETS if output_size(name) == size), None)


def check_preset(preset: str) -> None:
    """Raise :class:`InputError` naming the choices when ``preset`` is not a preset."""
    if preset not in PRESETS:
        raise InputError(
            f"unknown model preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}"
        )


def build_tiny_unet(config: dict) -> torch.nn.Module:
    """The tiny UNet, deterministically initialised.

    guided_diffusion zero-initialises the last convolution of every block and the output layer, which
    would make an untrained UNet predict eps = 0 everywhere (a linear, input-independent map). For a
    stand-in that exercises real non-linear gradients we give those zero tensors small random values.
    """
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(TINY_SEED)
        unet = build_unet(config)
        for p in unet.parameters():
            if p.dim() > 1 and not torch.any(p):
                torch.nn.init.normal_(p, std=0.02)
    finally:
        torch.random.set_rng_state(gen_state)
    return unet


def build_tiny_clip() -> torch.nn.Module:
    """A ``clip.model.CLIP`` of toy size, deterministically initialised (fp32)."""
    from clip.model import CLIP

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(TINY_SEED + 1)
        model = CLIP(**TINY_CLIP)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.float()


# -- quick settings per preset: the policy the notebooks, the demo and the EditorApp share --------
#: EditConfig overrides of the tiny preset: a few steps, a small batch; a whole edit in seconds on a CPU.
#: The one place these numbers live (the CLI's demo, EditorApp and the notebooks read them from here).
TINY_SETTINGS: dict[str, Any] = dict(
    timestep_respacing="20",
    skip_timesteps=10,
    batch_size=2,
    iterations_num=1,
    aug_num=4,
)

#: A lesson's samples on any weights: one batch of four, as the lessons say (the paper ranks 8
#: batches of 4; ``env.config(iterations_num=8)`` draws them). :meth:`NotebookEnv.config` starts here.
LESSON_BATCH: dict[str, Any] = dict(
    batch_size=4,
    iterations_num=1,
)

#: EditConfig overrides of the toy preset: the paper's guidance (λ_clip 1000, λ_range 50, 8 views,
#: 25 of 100 steps skipped) with one batch of four samples, so a lesson's edit takes seconds on a CPU.
TOY_SETTINGS: dict[str, Any] = dict(LESSON_BATCH)

#: The preset a machine without a GPU (or without the real checkpoints) uses: trained, offline.
TOY_PRESET = "toy"

#: The paper's model: what notebooks use with real weights unless ``$BLENDLAB_MODELS`` says otherwise.
REAL_PRESET = "256-uncond"

def settings_for(preset: str) -> dict[str, Any]:
    """The EditConfig overrides a quick run on ``preset`` uses: :data:`TINY_SETTINGS` for the random
    stand-ins, :data:`TOY_SETTINGS` for the toy world, none (the paper's settings) otherwise."""
    if preset.startswith("tiny"):
        return dict(TINY_SETTINGS)
    if preset == TOY_PRESET:
        return dict(TOY_SETTINGS)
    return {}
