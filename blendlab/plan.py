"""The step plan: every reverse step of an edit, worked out once, before the loop.

k-diffusion's samplers take their ``sigmas`` as an argument: the schedule is computed before the loop
and the loop only reads it. :func:`plan_steps` does the same for Blended Diffusion. For each step the
loop will run it fixes

- ``k`` — the loop's index, 0 … N−1 (labels: "step k/N");
- ``t`` — the timestep of the 1000-step schedule that step stands for (labels: "t=743");
- ``respaced_index`` — guided-diffusion's respaced index into the ``SpacedDiffusion`` (what its
  functions take as ``t``; counts down to 0; ``StepState.respaced_index`` is the same number);
- ``alpha_bar`` — ᾱ_t;
- ``guidance`` — "compute" a fresh gradient, "reuse" the last one, or "none" (the fast modes);
- ``views`` — how many CLIP views the guidance uses;
- ``prune`` — whether the batch is pruned after this step.

:class:`blendlab.sampler.BlendedSampler` reads its steps from a plan (built once per edit by
:func:`blendlab.edit`, or by the sampler itself), so no step recomputes the respacing. ``plan.table()``
prints it, as lessons show it.

May import: config, table.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Iterator

from .config import EditConfig
from .table import Table

__all__ = ["PlannedStep", "StepPlan", "plan_steps"]


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """One step of the plan (see the module docs for the fields)."""

    k: int
    t: int
    respaced_index: int
    alpha_bar: float
    guidance: str
    views: int
    prune: bool = False

    @property
    def index(self) -> int:
        """Deprecated: the respaced index, now :attr:`respaced_index` (``StepState.index`` is ``k``)."""
        warnings.warn("PlannedStep.index is deprecated: it is the respaced index, now PlannedStep.respaced_index "
                      "(k is the loop's step)", DeprecationWarning, stacklevel=2)
        return self.respaced_index


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """The steps an edit runs, in order, and the respacing they come from.

    ``total``: respaced steps before skipping (the "of 100" in "skip 25 of 100"); ``skipped``: how many
    of them the edit skips; ``respacing``: the ``timestep_respacing`` string. Iterating gives the
    :class:`PlannedStep`\\ s; ``len(plan)`` is N, the number of steps run.
    """

    steps: tuple[PlannedStep, ...]
    total: int
    skipped: int
    respacing: str

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[PlannedStep]:
        return iter(self.steps)

    def __getitem__(self, k: int) -> PlannedStep:
        return self.steps[k]

    @property
    def indices(self) -> list[int]:
        """The respaced indices, high to low (what ``BlendedSampler.timesteps`` returns)."""
        return [s.respaced_index for s in self.steps]

    @property
    def prune_index(self) -> int | None:
        """The step after which the batch is pruned, or None."""
        return next((s.k for s in self.steps if s.prune), None)

    def table(self) -> Table:
        """The plan as a :class:`~blendlab.table.Table`: one row per step."""
        return Table({"step": f"{s.k}/{len(self)}", "t": s.t, "respaced index": s.respaced_index, "ᾱ_t": s.alpha_bar,
                      "guidance": s.guidance, "views": s.views, "prune after": "yes" if s.prune else ""}
                     for s in self.steps)


def plan_steps(diffusion, cfg: EditConfig, guided: bool | None = None) -> StepPlan:
    """The :class:`StepPlan` of ``cfg`` on guided-diffusion's ``diffusion`` (a ``SpacedDiffusion``
    respaced as ``cfg.timestep_respacing``, e.g. :func:`blendlab.models.create_diffusion`).

    ``guided``: whether a guidance loss exists (default ``cfg.guided``); when not, every step's
    guidance is "none". Guidance modes and views follow :meth:`EditConfig.guidance_at` and
    :meth:`EditConfig.views_at`, the prune point :attr:`EditConfig.prune_index`.
    """
    guided = cfg.guided if guided is None else guided
    total = int(diffusion.num_timesteps)
    n = total - cfg.skip_timesteps  # the respacing is read once, here, not once per step
    prune_index = cfg.prune_index
    steps = tuple(
        PlannedStep(k=k, t=int(diffusion.timestep_map[i]), respaced_index=i, alpha_bar=float(diffusion.alphas_cumprod[i]),
                    guidance=cfg.guidance_at(k, n) if guided else "none", views=cfg.views_at(k, n),
                    prune=k == prune_index)
        for k, i in enumerate(range(n - 1, -1, -1))
    )
    return StepPlan(steps=steps, total=total, skipped=cfg.skip_timesteps, respacing=cfg.timestep_respacing)
