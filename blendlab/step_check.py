"""Check a blended step you wrote yourself against blendlab's, step by step, on the same random draws.

A lesson has the student write the reverse step, x̂0, the guided mean and the blend line. To say
whether that step *is* Blended Diffusion, :func:`compare_steps` runs the library's
:class:`blendlab.sampler.BlendedSampler` and, at every step, calls the student's function on the
library's x_t with the same noise the library drew. The first quantity that differs (x̂0, the guided
proposal inside the mask, the noised background outside it, x_{t−1}; inside or outside the mask) is named with its step, t and
size, so a wrong line is found where it first matters.

The draws replicate the sampler's one generator (:func:`library_draws`): the starting noise, one
augmentation seed per step, then per step the DDPM noise and the background's noise, in that order
— DDPM, an unconditional model, no pruning (the settings a lesson builds by hand).

``guidance``: the loss the library step differentiates. By default the sampler's own
:class:`blendlab.guidance.GuidanceLoss` (CLIP + range); pass any callable with its call signature
``loss(x_t, pred_x0, fac, seed=..., mask=..., aug_num=...) -> (total, terms)`` — e.g. a colour loss —
and the library step uses it too (``sampler.loss`` is read at every step).

May import: errors, config, models, sampler, vocabulary.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from .config import EditConfig
from .errors import InputError
from .models import create_diffusion
from .sampler import BlendedSampler
from .vocabulary import step_label

__all__ = ["StepDraws", "library_draws", "StepComparison", "compare_steps"]

#: What a student's step may return, in the order a step computes them, and how messages name them.
QUANTITIES = {"pred_x0": "x̂0", "fg": "the guided proposal (before blending)",
              "bg": "the noised background", "x_prev": "x_{t−1} (after blending)"}


@dataclasses.dataclass(frozen=True)
class StepDraws:
    """The random draws of one step: ``noise`` (B, 3, H, W) for the DDPM sample, ``bg_noise``
    (1, 3, H, W) for ``q_sample`` of the background, ``seed`` for the CLIP views' augmentations."""

    noise: torch.Tensor
    bg_noise: torch.Tensor
    seed: int


def _check_settings(cfg: EditConfig, models) -> None:
    problems = []
    if cfg.ddim:
        problems.append("ddim=True (the hand-built step is DDPM)")
    if cfg.prune_index is not None:
        problems.append("pruning (prune_at)")
    if models.num_classes is not None:
        problems.append(f"a class-conditional preset ({models.preset})")
    if problems:
        raise InputError("the step check replicates a plain DDPM run; it does not cover " + ", ".join(problems)
                         + ". Use an unconditional preset with ddim=False and no pruning.")


def library_draws(models, image: torch.Tensor, cfg: EditConfig) -> tuple[torch.Tensor, list[StepDraws]]:
    """The sampler's random draws for one batch seeded by ``cfg.seed``: the starting noise
    (B, 3, H, W) and a :class:`StepDraws` per step, in the order :class:`BlendedSampler` takes them."""
    _check_settings(cfg, models)
    if cfg.seed is None:
        raise InputError("the step check needs a fixed seed: set EditConfig(seed=...)")
    n = create_diffusion(models, cfg.timestep_respacing).num_timesteps - cfg.skip_timesteps
    g = torch.Generator(device=models.device).manual_seed(cfg.seed)
    b, size = cfg.batch_size, tuple(image.shape[-2:])
    start = torch.randn((b, 3, *size), generator=g, device=models.device)
    seeds = torch.randint(0, 2**62, (n,), generator=g, device=models.device).tolist()
    steps = []
    for k in range(n):
        noise = torch.randn((b, 3, *size), generator=g, device=models.device)
        bg_noise = torch.randn((1, 3, *size), generator=g, device=models.device)
        steps.append(StepDraws(noise=noise, bg_noise=bg_noise, seed=seeds[k]))
    return start, steps


@dataclasses.dataclass(frozen=True)
class StepComparison:
    """The outcome of :func:`compare_steps`. ``ok``: every compared quantity matched at every step.
    ``rows``: per step, the largest difference of each quantity. ``first``: where it first differed
    (step, t, quantity, inside/outside the mask, size), or None. ``text``: one paragraph saying so."""

    ok: bool
    rows: list
    first: dict | None
    text: str
    atol: float

    def __repr__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return self.ok


def _as_dict(out) -> dict:
    if isinstance(out, dict):
        unknown = set(out) - set(QUANTITIES)
        if unknown:
            raise InputError(f"your step returned {sorted(unknown)}; it may return {list(QUANTITIES)}")
        return out
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return {"pred_x0": out[0], "x_prev": out[1]}
    if isinstance(out, torch.Tensor):
        return {"x_prev": out}
    raise InputError("your step should return x_{t−1}, or (x̂0, x_{t−1}), or a dict with some of "
                     f"{list(QUANTITIES)}; it returned {type(out).__name__}")


def _where(diff: torch.Tensor, mask: torch.Tensor) -> tuple[str, float, float]:
    inside = float((diff * mask).amax()) if bool(mask.any()) else 0.0
    outside = float((diff * (1 - mask)).amax()) if bool((mask < 1).any()) else 0.0
    where = "inside and outside the mask" if inside > 0 and outside > 0 else (
        "inside the mask" if inside > 0 else "outside the mask")
    return where, inside, outside


def compare_steps(my_step: Callable, models, image: torch.Tensor, mask: torch.Tensor, cfg: EditConfig, *,
                  guidance=None, atol: float = 1e-4) -> StepComparison:
    """Run blendlab's sampler and, at each step, ``my_step(x_t, i, draws)`` on the same x_t.

    ``my_step`` gets the step's input x_t (B, 3, H, W), the respaced index ``i`` (what
    guided_diffusion's functions take as ``t``) and the step's :class:`StepDraws`; it returns
    x_{t−1}, or (x̂0, x_{t−1}), or a dict with any of ``pred_x0``, ``fg``, ``bg``, ``x_prev``.
    Quantities agree when they differ by at most ``atol`` everywhere. The library's trajectory
    is followed throughout, so one wrong step does not hide the next.
    """
    _, draws = library_draws(models, image, cfg)
    sampler = BlendedSampler(models, image, mask, cfg)
    if guidance is not None:
        if sampler.loss is None:
            raise InputError("guidance= needs a guided config: a non-empty prompt and clip_guidance_lambda != 0")
        sampler.loss = guidance
    rows, first = [], None
    for state in sampler.steps():
        with torch.enable_grad():
            mine = _as_dict(my_step(state.x_t.clone(), state.respaced_index, draws[state.index]))
        row = {"step": state.index, "t": state.timestep}
        for name in QUANTITIES:
            if name not in mine:
                continue
            theirs = getattr(state, name)
            got = torch.as_tensor(mine[name]).detach().to(theirs.device, theirs.dtype)
            if got.shape != theirs.shape:
                got = got.expand_as(theirs) if got.dim() == theirs.dim() else got
            if got.shape != theirs.shape:
                raise InputError(f"{step_label(state.index, state.num_steps, state.timestep)}: your "
                                 f"{QUANTITIES[name]} has shape {tuple(got.shape)}, the library's {tuple(theirs.shape)}")
            diff = (got - theirs).abs()
            m = state.mask.expand(diff.shape[0], 1, *diff.shape[-2:]).expand_as(diff)
            if name == "bg":  # only the background's outside joins x_{t−1}, only the proposal's inside
                diff = diff * (1 - m)
            elif name == "fg" and not cfg.local_clip_guided_diffusion:
                diff = diff * m
            row[name] = float(diff.max())
            if first is None and row[name] > atol:
                where, inside, outside = _where(diff, m)
                first = {"step": state.index, "t": state.timestep, "quantity": name, "where": where,
                         "inside": inside, "outside": outside, "label": step_label(state.index, state.num_steps,
                                                                                   state.timestep)}
        rows.append(row)
    if first is None:
        compared = sorted({k for r in rows for k in r if k in QUANTITIES}, key=list(QUANTITIES).index)
        text = (f"Your step matches blendlab's at all {len(rows)} steps (" + ", ".join(QUANTITIES[q] for q in compared)
                + f" within {atol:g}).")
    else:
        text = (f"Your step first differs at {first['label']}: {QUANTITIES[first['quantity']]} is off by up to "
                f"{max(first['inside'], first['outside']):.3g} {first['where']}"
                + (f" (inside: {first['inside']:.3g}, outside: {first['outside']:.3g})"
                   if first["where"] == "inside and outside the mask" else "") + ".")
    return StepComparison(ok=first is None, rows=rows, first=first, text=text, atol=atol)
