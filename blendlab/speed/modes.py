"""The fast modes: each a named set of :class:`~blendlab.config.EditConfig` overrides that gives
something up for time (the paper's algorithm is the default and stays the default).

May import: config, sampler.
"""

from __future__ import annotations

import dataclasses

from ..config import EditConfig

__all__ = ["Mode", "MODES", "mode"]


@dataclasses.dataclass(frozen=True)
class Mode:
    """A named way to run an edit. ``overrides`` go into the base EditConfig; ``steps_fraction``
    respaces to that fraction of the base's steps, with DDIM when ``ddim``, skipping as many as put
    the first step nearest the base's first timestep (the same starting noise level)."""

    key: str
    label: str
    gives_up: str
    overrides: dict = dataclasses.field(default_factory=dict)
    steps_fraction: float | None = None
    ddim: bool = False

    def config(self, base: EditConfig) -> EditConfig:
        """``base`` with this mode applied (``keep`` is capped at the base's batch size)."""
        changes = dict(self.overrides)
        if self.steps_fraction is not None:
            n = max(2, round(base.num_steps_total() * self.steps_fraction))
            respacing = f"ddim{n}" if self.ddim else str(n)
            start = _first_timestep(base.timestep_respacing, base.skip_timesteps)
            skip = min(range(n - 1), key=lambda s: abs(_first_timestep(respacing, s) - start))
            changes.update(timestep_respacing=respacing, ddim=self.ddim, skip_timesteps=skip)
        if "keep" in changes:
            changes["keep"] = min(changes["keep"], base.batch_size)
        return base.replace(**changes)


def _first_timestep(respacing: str, skip: int) -> int:
    """The timestep (of 1000) the first kept step of ``respacing`` after ``skip`` skipped ones stands for."""
    from guided_diffusion.respace import space_timesteps

    kept = sorted(space_timesteps(1000, respacing))
    return kept[len(kept) - 1 - skip]


MODES: tuple[Mode, ...] = (
    Mode("default", "paper (default)", "nothing: every step guided through the UNet, 8 CLIP views"),
    Mode("prune-0.3-keep-1", "prune at 30 %, keep 1",
         "choice: only the candidate whose early x̂0 CLIP liked best is finished; early x̂0 can mislead",
         dict(prune_at=0.3, keep=1)),
    Mode("prune-0.5-keep-2", "prune at 50 %, keep 2", "choice: half the candidates stop halfway",
         dict(prune_at=0.5, keep=2)),
    Mode("steps-1/2", "half the steps", "step size: each step jumps twice as far and guides half as often",
         steps_fraction=0.5),
    Mode("steps-1/4", "quarter of the steps", "step size: 4x larger jumps, a quarter of the guidance",
         steps_fraction=0.25),
    Mode("ddim-1/4", "DDIM, quarter of the steps",
         "noise: deterministic updates (eta 0) cannot wash out a bad early step; fewer steps",
         steps_fraction=0.25, ddim=True),
    Mode("every-2-reuse", "guide every 2nd step, reuse", "freshness: in-between steps apply a one-step-old gradient",
         dict(guidance_every=2)),
    Mode("every-2-none", "guide every 2nd step only", "strength: half the steps are unguided",
         dict(guidance_every=2, guidance_between="none")),
    Mode("every-3-reuse", "guide every 3rd step, reuse", "freshness: gradients up to two steps old",
         dict(guidance_every=3)),
    Mode("mpgd", "Jacobian-free (MPGD)",
         "the UNet's Jacobian: the gradient w.r.t. x̂0 ignores how x̂0 reacts to x_t (stronger, rougher at high noise)",
         dict(guidance_gradient="mpgd")),
    Mode("views-2-late", "2 CLIP views in the 2nd half",
         "averaging: late gradients from 2 views are noisier and easier to satisfy adversarially",
         dict(late_aug_num=2, late_at=0.5)),
    Mode("guide-60", "guide the first 60 % (Adaptive Guidance)", "late steering: the last 40 % follow the prior only",
         dict(guidance_until=0.6)),
    Mode("mpgd-steps-1/4", "MPGD + quarter of the steps", "both: the Jacobian and the step size",
         dict(guidance_gradient="mpgd"), steps_fraction=0.25),
    Mode("mpgd-every-2-prune", "MPGD, guide every 2nd, prune 30 % keep 1", "all three",
         dict(guidance_gradient="mpgd", guidance_every=2, prune_at=0.3, keep=1)),
)


def mode(key: str) -> Mode:
    """The mode called ``key`` (see :data:`MODES`)."""
    for m in MODES:
        if m.key == key:
            return m
    raise KeyError(f"no fast mode {key!r}; choose one of {', '.join(m.key for m in MODES)}")
