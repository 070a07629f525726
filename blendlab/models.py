"""The models an edit needs: ``load_models(preset)`` builds the guided-diffusion UNet and OpenAI CLIP
of a preset and returns them as one :class:`Models` bundle.

The real presets download the published checkpoints on first use (see :mod:`blendlab.download`);
``"tiny"`` builds the *same* classes (guided_diffusion ``UNetModel``, ``clip.model.CLIP``) at toy
size with a seeded random initialisation. The tiny preset exercises every code path on a CPU in
seconds, but it has learned nothing: its images are noise-like. It is a stand-in for mechanics, never
for results. ``"toy"`` loads the same classes trained on the toy world of coloured shapes
(:mod:`blendlab.toyworld`); its weights ship inside the package, so it too runs offline, and its
edits mean something.

The presets themselves live in :mod:`blendlab.presets`, the checkpoint files in
:mod:`blendlab.checkpoints`; their public names are re-exported here.

May import: errors, download, presets, checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .checkpoints import TOY_WEIGHTS, clip_remote_file, load_clip, load_unet_checkpoint, toy_weights  # noqa: F401
from .download import ensure_file
from .errors import InputError
from .presets import (  # noqa: F401  (re-exported)
    PRESETS,
    TINY_CLIP,
    TINY_SEED,
    build_tiny_clip,
    build_tiny_unet,
    build_unet,
    check_preset,
    count_parameters,
    diffusion_config,
    unet_config,
)

__all__ = [
    "Models",
    "PRESETS",
    "load_models",
    "create_diffusion",
    "default_device",
    "unet_config",
    "diffusion_config",
    "build_unet",
    "build_tiny_clip",
    "clip_remote_file",
    "load_unet_checkpoint",
    "count_parameters",
    "toy_weights",
]


@dataclasses.dataclass
class Models:
    """The pretrained networks an edit needs.

    Attributes:
        unet: guided_diffusion ``UNetModel`` (eval mode, ``requires_grad`` off).
        clip: ``clip.model.CLIP`` (eval mode, ``requires_grad`` off).
        image_size: side of the square images the UNet works at (256, 512 or 32 for tiny).
        preset: the preset name this bundle was built from.
        device: where both networks live.
        unet_config: keyword arguments of ``guided_diffusion.script_util.create_model``.
        diffusion_config: keyword arguments of ``create_gaussian_diffusion`` (without respacing).
        clip_name: CLIP architecture name ("ViT-B/16", ..., or "tiny").
    """

    unet: torch.nn.Module
    clip: torch.nn.Module
    image_size: int
    preset: str
    device: torch.device
    unet_config: dict
    diffusion_config: dict
    clip_name: str
    precision: str = "fp32"
    channels_last: bool = False
    compiled: Any = dataclasses.field(default=None, repr=False)
    _lpips: Any = dataclasses.field(default=None, repr=False)

    @property
    def denoiser(self):
        """The callable the sampler runs as the UNet: ``unet`` itself, or a wrapper that adds
        bf16 autocast, channels_last inputs and/or the ``torch.compile``-d module."""
        if self.precision != "bf16" and not self.channels_last and self.compiled is None:
            return self.unet
        return UNetRunner(self)

    @property
    def runner(self):
        """The old name of :attr:`denoiser` (it clashed with :mod:`blendlab.runner`); warns."""
        warnings.warn("Models.runner is deprecated: use Models.denoiser (the same callable)", DeprecationWarning,
                      stacklevel=2)
        return self.denoiser

    @property
    def clip_size(self) -> int:
        """CLIP's input resolution (224 for ViT-B/16)."""
        return int(self.clip.visual.input_resolution)

    @property
    def num_classes(self) -> int | None:
        """Number of classes of a class-conditional UNet, else None."""
        return getattr(self.unet, "num_classes", None)

    @property
    def is_tiny(self) -> bool:
        """The random-weight stand-ins ("tiny", "tiny-cond"): mechanics only."""
        return self.preset.startswith("tiny")

    @property
    def is_toy(self) -> bool:
        """The toy world's trained models (preset "toy"): meaningful edits of coloured shapes."""
        return self.preset == "toy"

    @property
    def is_local(self) -> bool:
        """Presets that never download anything (tiny and toy)."""
        return self.is_tiny or self.is_toy

    def lpips(self):
        """The LPIPS(VGG) network for the background-preservation baseline, built on first use.

        Real presets use LPIPS' pretrained VGG (torchvision downloads it once). The offline presets
        (tiny, toy) use a randomly initialised VGG (``pnet_rand=True``) so nothing is downloaded: a
        deep-feature distance of random features, not the published LPIPS.
        """
        if self._lpips is None:
            import lpips

            kwargs = dict(net="vgg", verbose=False)
            if self.is_local:
                kwargs.update(pnet_rand=True)
            self._lpips = lpips.LPIPS(**kwargs).to(self.device).eval().requires_grad_(False)
        return self._lpips


class UNetRunner:
    """Calls the UNet the fast way a :class:`Models` asks for; returns float32 like the UNet."""

    def __init__(self, models: Models):
        self.models = models

    def __call__(self, x, timesteps, **kwargs):
        m = self.models
        fn = m.compiled if m.compiled is not None else m.unet
        if m.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if m.precision == "bf16":
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                out = fn(x, timesteps, **kwargs)
        else:
            out = fn(x, timesteps, **kwargs)
        return out.float()


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def create_diffusion(models: Models, timestep_respacing: str):
    """The guided_diffusion ``SpacedDiffusion`` of a model bundle at a respacing (e.g. "100"; "" for
    the full 1000-step schedule)."""
    from guided_diffusion.script_util import create_gaussian_diffusion

    return create_gaussian_diffusion(**models.diffusion_config, timestep_respacing=timestep_respacing)


def load_models(
    preset: str | None = None,
    device: str | torch.device | None = None,
    *,
    clip_model: str = "ViT-B/16",
    unet_path: str | os.PathLike | None = None,
    clip_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    precision: str = "auto",
    channels_last: bool = False,
    compile: bool | str = False,
    progress: bool = True,
) -> Models:
    """Build the UNet and CLIP of a preset, downloading real weights on first use.

    Args:
        preset: "256-uncond" (the paper's model), "512-cond", "toy" (the toy world's trained
            models, shipped with blendlab), "tiny" or "tiny-cond". ``None`` reads
            the ``BLENDLAB_MODELS`` environment variable and falls back to "256-uncond".
        device: defaults to CUDA when available, else CPU.
        clip_model: CLIP architecture for the real presets ("ViT-B/16" as in the paper).
        unet_path / clip_path: local files to use instead of the cache/download (also for tiny:
            a state dict saved from the tiny UNet, a tiny CLIP as state dict or TorchScript).
        cache_dir: where downloads go; default ``$BLENDLAB_HOME/checkpoints`` (~/.cache/blendlab).
        precision: "auto" (fp16 UNet on CUDA as the reference, fp32 on CPU), "fp32", "fp16"
            (guided_diffusion's ``convert_to_fp16``; CUDA only) or "bf16" (autocast; CUDA or CPU).
        channels_last: run the UNet in channels-last memory format (faster convolutions on GPUs).
        compile: ``torch.compile`` the UNet (True, or a backend name such as "inductor"/"eager").
    """
    preset = preset or os.environ.get("BLENDLAB_MODELS") or "256-uncond"
    check_preset(preset)
    device = torch.device(device) if device is not None else default_device()
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise InputError("precision='fp16' needs a CUDA device; on CPU use 'fp32' or 'bf16'")
    use_fp16 = precision == "fp16"
    spec = PRESETS[preset]
    # guided_diffusion fixes the UNet's compute dtype at construction, so use_fp16 goes in here.
    config = dict(unet_config(preset), use_fp16=bool(use_fp16))
    packaged = bool(spec.get("packaged"))
    tiny = spec["checkpoint"] is None and not packaged

    # Find every file first: a missing file or download fails before the other one is fetched and
    # before half a billion parameters are allocated.
    for what, path in (("UNet", unet_path), ("CLIP", clip_path)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{what} checkpoint not found: {path}")
    if not tiny and not packaged:
        if unet_path is None:
            unet_path = ensure_file(spec["checkpoint"], cache_dir=cache_dir, progress=progress)
        if clip_path is None:
            clip_path = ensure_file(clip_remote_file(clip_model), cache_dir=cache_dir, progress=progress)

    if unet_path is not None:
        unet = build_unet(config)
        load_unet_checkpoint(unet, unet_path, preset)
    elif packaged:
        unet = build_unet(config)
        load_unet_checkpoint(unet, toy_weights("unet"), preset)
    else:
        unet = build_tiny_unet(config)

    if clip_path is not None:
        clip_net = load_clip(Path(clip_path), device)
        clip_name = "tiny" if tiny else ("toy" if packaged else clip_model)
    elif packaged:
        clip_net = load_clip(toy_weights("clip"), device)
        clip_name = "toy"
    else:
        clip_net = build_tiny_clip()
        clip_name = "tiny"

    unet = unet.to(device).eval().requires_grad_(False)
    if use_fp16:
        unet.convert_to_fp16()
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    compiled = None
    if compile:
        compiled = torch.compile(unet, **({} if compile is True else {"backend": compile}))
    clip_net = clip_net.to(device).eval().requires_grad_(False)
    return Models(
        unet=unet,
        clip=clip_net,
        image_size=int(config["image_size"]),
        preset=preset,
        device=device,
        unet_config=config,
        diffusion_config=diffusion_config(),
        clip_name=clip_name,
        precision=precision,
        channels_last=channels_last,
        compiled=compiled,
    )
