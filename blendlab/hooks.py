"""Built-in step hooks: a memory-bounded recorder and a progress bar.

A hook is any callable taking a :class:`blendlab.sampler.StepState`; returning a new StepState
replaces it (see :meth:`BlendedSampler.steps`). These two only observe.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from .sampler import StepState

__all__ = ["RecordedStep", "Recorder", "ProgressBar", "FIELDS"]

#: StepState tensors a Recorder can keep.
FIELDS = ("x_t", "pred_x0", "pred_x0_guided", "grad", "fg", "bg", "x_prev")


@dataclasses.dataclass
class RecordedStep:
    """A recorded step: scalars plus CPU copies of the chosen fields, (B, 3, h, w)."""

    iteration: int
    index: int
    t: int
    alpha_bar: float
    num_steps: int
    losses: dict
    fields: dict


class Recorder:
    """Keep chosen StepState fields every ``every`` steps (and always the last), on the CPU.

    Args:
        every: record steps whose index is a multiple of ``every``, and the final step.
        fields: names from :data:`FIELDS`.
        size: downscale images to ``size x size`` on the model's device before copying (None: keep).
        max_mb: memory budget. When the recording would exceed it, every other recorded step
            (never the final one) is dropped and ``every`` doubles, so a long run keeps an evenly
            thinned trajectory instead of failing or growing without bound.
        dtype: storage dtype on the CPU (float16 halves the memory; display is unaffected).

    ``recorder.steps`` lists :class:`RecordedStep`; ``recorder.mask`` is the (downscaled) mask.
    """

    def __init__(self, every: int = 1, fields=("x_t", "pred_x0", "grad", "fg", "bg", "x_prev"),
                 size: int | None = None, max_mb: float = 512, dtype: torch.dtype = torch.float16):
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise ValueError(f"unknown Recorder fields {unknown}; choose from {', '.join(FIELDS)}")
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every = int(every)
        self.fields = tuple(fields)
        self.size = size
        self.max_bytes = int(max_mb * 2**20)
        self.dtype = dtype
        self.steps: list[RecordedStep] = []
        self.mask: torch.Tensor | None = None
        self.prompt: str | None = None

    def _shrink(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x.float(), size=(self.size, self.size), mode="bilinear",
                              antialias=True, align_corners=False)
        return x.to("cpu", self.dtype)

    @property
    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for s in self.steps for v in s.fields.values())

    def __call__(self, state: StepState) -> None:
        last = state.index == state.num_steps - 1
        if state.index % self.every and not last:
            return
        if self.mask is None:
            self.mask = self._shrink(state.mask).float().round()
        self.steps.append(RecordedStep(
            iteration=state.iteration, index=state.index, t=state.t, alpha_bar=state.alpha_bar,
            num_steps=state.num_steps, losses=state.losses,
            fields={name: self._shrink(getattr(state, name)) for name in self.fields},
        ))
        while self.nbytes > self.max_bytes and len(self.steps) > 2:
            keep = [s for k, s in enumerate(self.steps) if k % 2 == 0 or k == len(self.steps) - 1]
            if len(keep) == len(self.steps):
                break
            self.steps = keep
            self.every *= 2

    def field(self, name: str, iteration: int | None = None) -> torch.Tensor:
        """Stack one field over the recorded steps: (S, B, C, h, w)."""
        steps = [s for s in self.steps if iteration is None or s.iteration == iteration]
        return torch.stack([s.fields[name] for s in steps])

    def __len__(self) -> int:
        return len(self.steps)


class ProgressBar:
    """A tqdm.auto bar over the steps: a widget in notebooks, text in terminals.

    With ``loss_every=k`` it also shows the losses every k steps; reading them makes the host wait for
    the device, so the default (0) does not, and the step loop stays free of host syncs.
    """

    def __init__(self, loss_every: int = 0, **tqdm_kwargs):
        self.loss_every = loss_every
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None

    def __call__(self, state: StepState) -> None:
        from tqdm.auto import tqdm

        if state.index == 0 or self.bar is None:
            if self.bar is not None:
                self.bar.close()
            desc = f"sample batch {state.iteration + 1}"
            self.bar = tqdm(total=state.num_steps, desc=desc, leave=False, **self.tqdm_kwargs)
        self.bar.update(1)
        if self.loss_every and state.index % self.loss_every == 0 and state.loss_tensors:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in state.losses.items()}, refresh=False)
        if state.index == state.num_steps - 1:
            self.bar.close()
            self.bar = None
