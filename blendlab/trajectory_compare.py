"""Comparing recorded trajectories: which steps of two recordings belong together, and how far apart
they are.

- :func:`steps_of`: the recorded steps of one iteration, with clear errors;
- :func:`pair_steps`: pairs by step index, or by timestep when the step counts differ;
- :func:`abs_difference`, :func:`step_distances`: per-pixel and per-step ``|a − b|``, and the
  first step where two runs diverge (:meth:`StepDistances.first_divergence`).

Steps are anything with the fields of :class:`blendlab.trajectory.RecordedStep` (``index``,
``num_steps``, ``timestep``, ``iteration``, ``fields``). The step scrubber, the figures and the
Recorder use these; ``blendlab.trajectory`` re-exports them.

May import: errors.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from .errors import InputError

__all__ = ["steps_of", "SYNCS", "pair_steps", "match_size", "abs_difference", "StepDistances", "step_distances"]


def steps_of(recorder, iteration: int | None = None) -> list:
    """The recorded steps of one iteration (default: the first recorded one), with clear errors."""
    steps = list(getattr(recorder, "steps", []))
    if not steps:
        raise InputError(
            "the recorder has no steps: pass it as a hook (bl.edit(..., hooks=[recorder]) or "
            "sampler.steps(hooks=[recorder])) and run the edit first"
        )
    it = steps[0].iteration if iteration is None else iteration
    chosen = [s for s in steps if s.iteration == it]
    if not chosen:
        raise InputError(f"iteration {iteration} was not recorded; recorded: {sorted({s.iteration for s in steps})}")
    return chosen


SYNCS = ("auto", "step", "timestep")


def _nearest(value, candidates) -> int:
    """Position of the candidate closest to ``value`` (the first one on a tie)."""
    return min(range(len(candidates)), key=lambda k: (abs(candidates[k] - value), k))


def pair_steps(steps_a: list, steps_b: list, sync: str = "auto") -> tuple[list, str]:
    """For each step of ``steps_a``, the step of ``steps_b`` shown and measured with it.

    ``sync="step"`` pairs the same step index (the nearest recorded one); ``"timestep"`` the nearest
    timestep of the 1000-step schedule (runs with different step counts, e.g. respacing 100 vs 50, or
    another ``skip_timesteps``); ``"auto"`` takes ``"step"`` when both runs have the same number of
    steps, else ``"timestep"``. Returns ``([(step_a, step_b), ...], rule used)``.
    """
    if sync not in SYNCS:
        raise InputError(f"sync must be one of {', '.join(SYNCS)}, got {sync!r}")
    if not steps_a or not steps_b:
        raise InputError("both recordings need at least one step")
    if sync == "auto":
        sync = "step" if steps_a[0].num_steps == steps_b[0].num_steps else "timestep"
    if sync == "timestep":
        if any(s.timestep is None for s in (*steps_a, *steps_b)):
            raise InputError("a recording has no timesteps (made before blendlab recorded them); use sync='step'")
        keys_a, keys_b = [s.timestep for s in steps_a], [s.timestep for s in steps_b]
    else:
        keys_a, keys_b = [s.index for s in steps_a], [s.index for s in steps_b]
    return [(a, steps_b[_nearest(k, keys_b)]) for a, k in zip(steps_a, keys_a)], sync


def match_size(b: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``b`` resized (bilinear, antialiased) to the height and width of ``like`` when they differ."""
    if b.shape[-2:] == like.shape[-2:]:
        return b
    return F.interpolate(b.float(), size=tuple(like.shape[-2:]), mode="bilinear", antialias=True,
                         align_corners=False)


def abs_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``|a − b|`` averaged over channels: (..., C, H, W) -> (..., H, W), float32.
    ``b`` is resized to ``a``'s size when the recordings were kept at different sizes."""
    a = a.float()
    b = match_size(b.float(), a)
    return (a - b).abs().mean(dim=-3)


@dataclasses.dataclass
class StepDistances:
    """How far two recordings are apart at every step of the first (see :func:`step_distances`).

    Attributes:
        field: the compared field.  sync: the pairing rule used ("step" or "timestep").
        pairs: ``[(step_a, step_b), ...]``.
        mean: mean over pixels (and samples) of the per-pixel ``|a − b|`` (averaged over channels).
        peak: its maximum: 0 only where the two tensors are identical.
    """

    field: str
    sync: str
    pairs: list
    mean: list
    peak: list

    @property
    def steps(self) -> list[int]:
        """The steps k (from 0, ``index``) of the first recording: the x axis of a plot."""
        return [a.index for a, _ in self.pairs]

    def first_divergence(self, tol: float = 0.0) -> int | None:
        """The first step k (from 0, the ``index`` of the first recording's step, as its label
        ``"step k/N"`` shows it) whose ``peak`` exceeds ``tol``; None when the two never differ by
        more — test it with ``is None``, since step 0 is falsy. (Earlier versions counted from 1.)
        :meth:`first_divergent_pair` gives the two steps themselves."""
        return next((n for n, p in zip(self.steps, self.peak) if p > tol), None)

    def first_divergent_pair(self, tol: float = 0.0) -> tuple | None:
        """``(step_a, step_b)`` at :meth:`first_divergence` (their ``.label`` names them), or None."""
        return next((pair for pair, p in zip(self.pairs, self.peak) if p > tol), None)


def step_distances(rec_a, rec_b, field: str = "pred_x0", *, sample: int | None = None,
                   iteration: int | None = None, sync: str = "auto") -> StepDistances:
    """Per-step distance of one field between two recordings, paired as :func:`pair_steps` does.

    Args:
        field: a field both recorded.  sample: one sample (row) of the batch; None: every row the
            two batches share.  iteration: which batch (default: the first recorded).
    """
    pairs, used = pair_steps(steps_of(rec_a, iteration), steps_of(rec_b, iteration), sync)
    mean, peak = [], []
    for a, b in pairs:
        for s, who in ((a, "the first"), (b, "the second")):
            if field not in s.fields:
                raise InputError(f"field {field!r} was not recorded by {who} recording; recorded: "
                                 f"{', '.join(s.fields)}")
        xa, xb = a.fields[field], b.fields[field]
        rows = min(xa.shape[0], xb.shape[0])
        if sample is not None:
            if not 0 <= sample < rows:
                raise InputError(f"sample {sample} out of range: the recordings share {rows} rows")
            xa, xb = xa[sample:sample + 1], xb[sample:sample + 1]
        else:
            xa, xb = xa[:rows], xb[:rows]
        d = abs_difference(xa, xb)
        mean.append(float(d.mean()))
        peak.append(float(d.max()))
    return StepDistances(field=field, sync=used, pairs=pairs, mean=mean, peak=peak)
