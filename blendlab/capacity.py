"""Will a batch fit in memory? An estimate from the preset's networks, checked before any work.

Every guided step keeps, for each sample, what the UNet's forward saves for the backward pass (the
guidance differentiates x̂0 through the UNet) and what CLIP's image tower saves for each of the
``aug_num`` augmented views. :func:`memory_needed` counts those tensors exactly, without weights or
arithmetic: the preset's UNet and CLIP are built on PyTorch's ``meta`` device at the preset's
resolution and channel counts, one sample is pushed through them inside
``torch.autograd.graph.saved_tensors_hooks``, and the saved tensors' bytes are summed (each tensor
once). The weights of both networks come on top, once. fp16 on CUDA (as ``load_models`` does) is
counted as such. What it leaves out (the interpreter, torch itself, allocator slack) is already
outside the free memory it is held against; ``benchmarks/bench_capacity.py`` prints the estimate
next to the measured peak.

The free memory: ``torch.cuda.mem_get_info`` on CUDA; on CPU ``MemAvailable`` of
``/proc/meminfo`` (else ``os.sysconf``'s available pages). :func:`check_batch_fits` refuses a
batch above :data:`USABLE` of it, naming the largest batch that fits — for the presets whose
estimate was measured (:data:`MEASURED`: on this project's CPU, ``bench_capacity.py``, the toy
estimate was 0.7–1.8× the peak it measured, tiny 0.4–1.1×). For the real presets, never measured
here, a batch over the estimate only warns: an estimate nobody checked must not stop a GPU run.

May import: errors, presets, toyworld.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache

import torch

from .errors import BlendlabWarning, InputError


class BatchMayNotFitWarning(BlendlabWarning):
    """A real preset's batch is over the (unmeasured) memory estimate: it may run out of memory."""

__all__ = ["memory_needed", "free_memory", "largest_batch", "check_batch_fits", "USABLE", "MEASURED"]

#: The share of the free memory a batch may plan to use (the rest: allocator slack, other work).
USABLE = 0.8
#: Presets whose estimate ``benchmarks/bench_capacity.py`` measured: a batch over it is refused.
MEASURED = frozenset({"toy", "tiny", "tiny-cond"})

#: ``clip.model.CLIP`` arguments of OpenAI's ViT-B/16, the CLIP of the real presets.
VIT_B_16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                transformer_layers=12)


def _clip_config(preset: str) -> dict:
    from .presets import PRESETS, TINY_CLIP

    if PRESETS[preset]["checkpoint"] is not None:
        return VIT_B_16
    if preset == "toy":
        from .toyworld.train_clip import TOY_CLIP

        return TOY_CLIP
    return TINY_CLIP


def _saved_bytes(module: torch.nn.Module, *inputs, **kwargs) -> int:
    """Bytes of the tensors autograd saves when ``module(*inputs)`` runs (each tensor once)."""
    seen: dict[int, torch.Tensor] = {}

    def pack(t):
        seen.setdefault(id(t), t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*inputs, **kwargs)
    return sum(t.numel() * t.element_size() for t in seen.values())


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


@lru_cache(maxsize=None)
def _networks(preset: str, fp16: bool) -> tuple[int, int, int]:
    """``(weights, UNet bytes per sample, CLIP bytes per view)`` of ``preset``, counted on ``meta``."""
    from clip.model import CLIP

    from .presets import build_unet, unet_config

    config = dict(unet_config(preset), use_fp16=fp16)
    unet = build_unet(config, "meta")
    size = config["image_size"]
    x = torch.zeros(1, 3, size, size, device="meta", requires_grad=True)
    y = dict(y=torch.zeros(1, dtype=torch.long, device="meta")) if config["class_cond"] else {}
    unet_bytes = _saved_bytes(unet, x, torch.zeros(1, device="meta"), **y)
    with torch.device("meta"):
        clip = CLIP(**_clip_config(preset))
    if fp16:
        clip = clip.half()
    res = clip.visual.input_resolution
    view = torch.zeros(1, 3, res, res, device="meta", dtype=clip.dtype, requires_grad=True)
    clip_bytes = _saved_bytes(clip.visual, view)
    return _param_bytes(unet) + _param_bytes(clip), unet_bytes, clip_bytes


def memory_needed(preset: str, batch_size: int, aug_num: int, fp16: bool = False) -> tuple[int, int]:
    """``(fixed, per sample)`` bytes of an edit: the weights once; per sample the UNet's saved
    tensors and ``aug_num`` CLIP views' (see the module docs)."""
    weights, unet_bytes, clip_bytes = _networks(preset, fp16)
    return weights, unet_bytes + max(1, aug_num) * clip_bytes


def free_memory(device) -> int:
    """Bytes free for this process on ``device`` (see the module docs)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def largest_batch(preset: str, aug_num: int, device) -> tuple[int, int, int, int]:
    """``(largest batch that fits, fixed bytes, bytes per sample, free bytes)`` on ``device``."""
    fp16 = torch.device(device).type == "cuda"
    fixed, per_sample = memory_needed(preset, 1, aug_num, fp16)
    free = free_memory(device)
    return max(0, int((USABLE * free - fixed) // per_sample)), fixed, per_sample, free


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def check_batch_fits(preset: str, batch_size: int, aug_num: int, device, flag: str = "--batch_size") -> int:
    """Raise :class:`InputError` before any work when ``batch_size`` samples of ``preset`` will not
    fit on ``device``, naming the largest batch that does; returns that largest batch. For a preset
    not in :data:`MEASURED` the same message is a warning (:class:`BatchMayNotFitWarning`)."""
    fits, fixed, per_sample, free = largest_batch(preset, aug_num, device)
    if batch_size <= fits:
        return fits
    need = fixed + batch_size * per_sample
    where = f"{torch.device(device)} has {_gb(free)} free"
    if preset not in MEASURED:
        warnings.warn(f"{flag} {batch_size} may not fit: by an estimate not measured for real presets, the "
                      f"{preset} preset needs about {_gb(need)} ({_gb(per_sample)} per sample with {aug_num} CLIP "
                      f"views) and {where}; if it runs out of memory, use {flag} {max(fits, 1)} and raise "
                      "--iterations_num", BatchMayNotFitWarning, stacklevel=2)
        return fits
    if fits < 1:
        raise InputError(f"{flag} {batch_size} will not fit: even one sample of the {preset} preset needs about "
                         f"{_gb(fixed + per_sample)} ({aug_num} CLIP views) and {where}; free some memory, "
                         "lower --aug_num or use a device with more memory")
    raise InputError(f"{flag} {batch_size} will not fit: the {preset} preset needs about {_gb(need)} for it "
                     f"({_gb(per_sample)} per sample with {aug_num} CLIP views) and {where}; use {flag} {fits} "
                     f"or less (raise --iterations_num for more samples)")
