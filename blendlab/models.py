"""Model presets: the guided-diffusion UNet, OpenAI CLIP, and a tiny offline stand-in.

``load_models(preset)`` returns a :class:`Models` bundle. The real presets download the published
checkpoints on first use (see :mod:`blendlab.download`); ``"tiny"`` builds the *same* classes
(guided_diffusion ``UNetModel``, ``clip.model.CLIP``) at toy size with a seeded random initialisation.
The tiny preset exercises every code path on a CPU in seconds, but it has learned nothing: its images
are noise-like. It is a stand-in for mechanics, never for results. ``"toy"`` loads the same classes
trained on the toy world of coloured shapes (:mod:`blendlab.toyworld`); its weights ship inside the
package, so it too runs offline, and its edits mean something.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .download import RemoteFile, ensure_file, sha256_file
from .errors import CheckpointError, InputError

__all__ = [
    "Models",
    "PRESETS",
    "load_models",
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

TINY_SEED = 0


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
    def runner(self):
        """The callable the sampler runs as the UNet: ``unet`` itself, or a wrapper that adds
        bf16 autocast, channels_last inputs and/or the ``torch.compile``-d module."""
        if self.precision != "bf16" and not self.channels_last and self.compiled is None:
            return self.unet
        return UNetRunner(self)

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


def unet_config(preset: str) -> dict:
    """``create_model`` keyword arguments of a preset (guided_diffusion defaults + the preset's flags)."""
    _check_preset(preset)
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
    return sum(p.numel() for p in module.parameters())


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise InputError(
            f"unknown model preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}"
        )


def _seeded_tiny_unet(config: dict) -> torch.nn.Module:
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


TOY_WEIGHTS = Path(__file__).resolve().parent / "toyworld" / "weights"
_VERIFIED: set = set()


def toy_weights(kind: str) -> Path:
    """Path of the shipped toy-world weights ("unet" or "clip"), checked against the sha256 in the
    JSON card the training script wrote beside them. Raises :class:`CheckpointError` when missing
    or corrupt."""
    import json

    path = TOY_WEIGHTS / f"toy_{kind}.pt"
    card = path.with_suffix(".json")
    retrain = f"python -m blendlab.toyworld.train_{kind}"
    if not path.is_file() or not card.is_file():
        raise CheckpointError(
            f"the toy world's {kind} weights are missing ({path}); reinstall blendlab, or train them "
            f"with `{retrain}` (see the README's toy-world section)"
        )
    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _VERIFIED:
        try:
            expected = json.loads(card.read_text())["sha256"]
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"the toy world's card {card} is unreadable ({exc}); reinstall blendlab") from None
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(
                f"the toy world's {kind} weights {path} are corrupt (sha256 {actual[:12]}… but "
                f"its card says {expected[:12]}…); reinstall blendlab, or retrain with `{retrain}`"
            )
        _VERIFIED.add(key)
    return path


def load_unet_checkpoint(unet: torch.nn.Module, path: str | os.PathLike, preset: str) -> None:
    """Load a guided-diffusion state dict into ``unet``, with errors that say what to do."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {str(exc)[:200]}). "
            "It is probably truncated or corrupt: delete it and run `blendlab download` again, "
            "or download the file by hand."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {path} is not a plain state dict of tensors; guided-diffusion checkpoints are. "
            "Check that you passed the UNet file (e.g. 256x256_diffusion_uncond.pt)."
        )
    expected = unet.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong_shape:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if wrong_shape:
            k = wrong_shape[0]
            details.append(
                f"{len(wrong_shape)} tensors of another shape (e.g. {k}: file "
                f"{tuple(state[k].shape)} vs model {tuple(expected[k].shape)})"
            )
        raise CheckpointError(
            f"checkpoint {path} does not fit the {preset!r} UNet: {'; '.join(details)}. "
            "It belongs to another architecture: use the preset that matches the file "
            "(256x256_diffusion_uncond.pt -> '256-uncond', 512x512_diffusion.pt -> '512-cond')."
        )
    unet.load_state_dict(state)


def clip_remote_file(name: str) -> RemoteFile:
    """Where OpenAI publishes the CLIP ``name`` weights; the URL carries the file's sha256."""
    import clip

    if name not in clip.clip._MODELS:
        raise InputError(
            f"unknown CLIP model {name!r}; choose one of {', '.join(clip.available_models())}"
        )
    url = clip.clip._MODELS[name]
    return RemoteFile(
        filename=os.path.basename(url),
        urls=(url,),
        sha256=url.split("/")[-2],
        description=f"OpenAI CLIP {name}",
    )


def _load_clip(path: Path, device: torch.device) -> torch.nn.Module:
    import clip

    try:
        model, _ = clip.load(str(path), device=device, jit=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(
            f"CLIP checkpoint {path} could not be loaded ({type(exc).__name__}: {str(exc)[:200]}). "
            "Delete it and download it again (`blendlab download`)."
        ) from None
    return model


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
    _check_preset(preset)
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

    if tiny and unet_path is None:
        unet = _seeded_tiny_unet(config)
    elif packaged and unet_path is None:
        unet = build_unet(config)
        load_unet_checkpoint(unet, toy_weights("unet"), preset)
    else:
        # find the file first: a missing download should fail before half a billion parameters
        # are allocated
        path = unet_path
        if path is None:
            path = ensure_file(spec["checkpoint"], cache_dir=cache_dir, progress=progress)
        elif not Path(path).is_file():
            raise FileNotFoundError(f"UNet checkpoint not found: {path}")
        unet = build_unet(config)
        load_unet_checkpoint(unet, path, preset)

    if clip_path is not None:
        clip_net = _load_clip(Path(clip_path), device)
        clip_name = "tiny" if tiny else ("toy" if packaged else clip_model)
    elif packaged:
        clip_net = _load_clip(toy_weights("clip"), device)
        clip_name = "toy"
    elif tiny:
        clip_net = build_tiny_clip()
        clip_name = "tiny"
    else:
        path = ensure_file(clip_remote_file(clip_model), cache_dir=cache_dir, progress=progress)
        clip_net = _load_clip(path, device)
        clip_name = clip_model

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
