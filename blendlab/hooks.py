"""Built-in step hooks: a memory-bounded recorder and a progress bar.

A hook is any callable taking a :class:`blendlab.sampler.StepState`; returning a new StepState
replaces it (see :meth:`BlendedSampler.steps`). These two only observe.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import InputError
from .sampler import StepState
from .trajectory import LazyFields, RecordedStep, read_trajectory, steps_of, write_trajectory

__all__ = ["RecordedStep", "Recorder", "ProgressBar", "FIELDS", "load_trajectory"]

#: StepState tensors a Recorder can keep.
FIELDS = ("x_t", "pred_x0", "pred_x0_guided", "grad", "fg", "bg", "x_prev")


class Recorder:
    """Keep chosen StepState fields every ``every`` steps (and always the last), on the CPU.

    Args:
        every: record steps whose index is a multiple of ``every``, and the final step.
        fields: names from :data:`FIELDS`.
        size: downscale images to ``size x size`` on the model's device before copying (None: keep).
        max_mb: memory budget. When the recording would exceed it, every other recorded step
            (never the final one) is dropped and ``every`` doubles, so a long run keeps an evenly
            thinned trajectory instead of failing or growing without bound. The first time this
            happens a warning says so; ``recorder.thinned`` counts the halvings.
        dtype: storage dtype on the CPU (float16 halves the memory; display is unaffected).

    ``recorder.steps`` lists :class:`RecordedStep`; ``recorder.mask`` is the (downscaled) mask,
    ``recorder.init_image`` the (downscaled, float32) input, ``recorder.cfg`` the EditConfig and
    ``recorder.preset`` the model preset of the run (None until a step is recorded).

    **Saving and loading.** ``recorder.save("run.npz")`` writes one self-describing file, atomically
    (a temporary file moved into place); ``Recorder.load("run.npz")`` (or
    :func:`blendlab.load_trajectory`) reads it back. The file is a numpy ``.npz``: an uncompressed zip
    archive (``numpy.load(path)`` opens it too) of

    - ``meta.json`` (UTF-8 JSON, the first member): ``format`` ("blendlab-trajectory"),
      ``format_version`` (1), ``blendlab_version``, ``preset``, ``config`` (every EditConfig field),
      ``recorder`` (every, fields, size, dtype, max_mb, thinned), ``mask`` and ``init_image``
      (``{"member", "dtype", "shape"}``), and ``steps``: one object per recorded step with
      ``iteration``, ``index`` (0-based step), ``num_steps``, ``t`` (respaced index), ``timestep``
      (t of the 1000-step schedule), ``alpha_bar`` (ᾱ_t), ``losses`` ({term: float}),
      ``sample_ids`` (rows -> samples of the first batch) and ``fields`` ({name: {member, dtype, shape}});
    - ``mask.npy`` (1 or B, 1, h, w) float32 in {0, 1}, ``init_image.npy`` (1, 3, h, w) float32 in
      [-1, 1], and ``steps/<k:05d>/<field>.npy`` (B, 3, h, w) in the recording's dtype (bfloat16 is
      stored as its raw 16 bits, int16).

    Loading never runs code (JSON, and arrays read with ``allow_pickle=False``). With ``lazy=True``
    (the default) only ``meta.json``, the mask and the input are read at once; each step's fields are
    read on first access. A truncated, corrupt or foreign file raises
    :class:`blendlab.errors.TrajectoryError` saying what it is.
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
        self.max_mb = float(max_mb)
        self.max_bytes = int(max_mb * 2**20)
        self.dtype = dtype
        self.steps: list[RecordedStep] = []
        self.mask: torch.Tensor | None = None
        self.init_image: torch.Tensor | None = None
        self.cfg = None
        self.preset: str | None = None
        self.prompt: str | None = None
        self.thinned = 0
        self.source: Path | None = None  # the file a loaded recording came from
        self.meta: dict = {}  # the file's meta.json, for a loaded recording

    def _shrink(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        x = x.detach()
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x.float(), size=(self.size, self.size), mode="bilinear",
                              antialias=True, align_corners=False)
        return x.to("cpu", dtype or self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes the recorded fields take (of a loaded recording: once every field is read)."""
        return sum(s.fields.nbytes() if isinstance(s.fields, LazyFields) else
                   sum(v.numel() * v.element_size() for v in s.fields.values()) for s in self.steps)

    def __call__(self, state: StepState) -> None:
        last = state.index == state.num_steps - 1
        if state.index % self.every and not last:
            return
        if self.mask is None:
            self.mask = self._shrink(state.mask, torch.float32).round()
            if state.init_image is not None:
                self.init_image = self._shrink(state.init_image, torch.float32)
            self.cfg, self.preset = state.cfg, state.preset
            self.prompt = getattr(state.cfg, "prompt", None)
        ids = None if state.sample_ids is None else tuple(int(i) for i in state.sample_ids.tolist())
        step = RecordedStep(
            iteration=state.iteration, index=state.index, t=state.t, alpha_bar=state.alpha_bar,
            num_steps=state.num_steps, losses=state.losses,
            fields={name: self._shrink(getattr(state, name)) for name in self.fields},
            timestep=state.timestep, sample_ids=ids,
        )
        self.steps.append(step)
        while self.nbytes > self.max_bytes and len(self.steps) > 2:
            keep = [s for k, s in enumerate(self.steps) if k % 2 == 0 or k == len(self.steps) - 1]
            if len(keep) == len(self.steps):
                break
            if not self.thinned:
                warnings.warn(
                    f"Recorder: the recording passed max_mb={self.max_mb:g} at step "
                    f"{state.index + 1}/{state.num_steps}, so every other recorded step is dropped (now every "
                    f"{self.every * 2} steps; more halvings may follow, recorder.every tells the final "
                    "spacing). To keep every step raise max_mb, or record fewer fields, a smaller size= "
                    "or dtype=torch.float16.", stacklevel=2)
            self.steps = keep
            self.every *= 2
            self.thinned += 1

    def field(self, name: str, iteration: int | None = None) -> torch.Tensor:
        """Stack one field over the recorded steps: (S, B, C, h, w)."""
        steps = [s for s in self.steps if iteration is None or s.iteration == iteration]
        return torch.stack([s.fields[name] for s in steps])

    def __len__(self) -> int:
        return len(self.steps)

    # -- files --------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the recording to one file (see the class docstring); atomic. Returns the path."""
        from . import __version__

        if not self.steps:
            raise InputError("nothing to save: the recorder has no steps; run an edit with it as a hook first")
        settings = {"every": self.every, "fields": list(self.fields), "size": self.size,
                    "dtype": str(self.dtype).removeprefix("torch."), "max_mb": self.max_mb,
                    "thinned": self.thinned}
        return write_trajectory(path, steps=self.steps, mask=self.mask, init_image=self.init_image,
                                cfg=self.cfg, preset=self.preset, settings=settings, version=__version__)

    @classmethod
    def load(cls, path, *, lazy: bool = True) -> "Recorder":
        """A Recorder holding what :meth:`save` wrote to ``path``. With ``lazy`` (default) the
        steps' fields are read from the file on first use; ``lazy=False`` reads everything now."""
        data = read_trajectory(path, lazy=lazy)
        settings = data["settings"]
        dtype = getattr(torch, str(settings.get("dtype", "float16")), torch.float16)
        rec = cls(every=int(settings.get("every", 1)), fields=tuple(settings.get("fields", ())),
                  size=settings.get("size"), max_mb=float(settings.get("max_mb", 512)),
                  dtype=dtype if isinstance(dtype, torch.dtype) else torch.float16)
        rec.steps = data["steps"]
        rec.mask, rec.init_image = data["mask"], data["init_image"]
        rec.cfg, rec.preset = data["cfg"], data["preset"]
        rec.prompt = getattr(rec.cfg, "prompt", None)
        rec.thinned = int(settings.get("thinned", 0))
        rec.source, rec.meta = Path(path), data["meta"]
        return rec


def load_trajectory(path, *, lazy: bool = True) -> Recorder:
    """Read a recording saved by :meth:`Recorder.save` (same as ``Recorder.load``)."""
    return Recorder.load(path, lazy=lazy)


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
