"""The Recorder: a memory-bounded hook that keeps chosen StepState fields, on the CPU, and its file.

A hook is any callable taking a :class:`blendlab.sampler.StepState` (see :mod:`blendlab.hooks`);
this one only observes. :func:`load_trajectory` reads a saved recording back.

May import: _version, errors, images, masks, video, sampler, trajectory, trajectory_compare, vocabulary.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ._version import __version__
from .errors import InputError
from .sampler import StepState
from .trajectory import LazyFields, RecordedStep, read_trajectory, write_trajectory
from .trajectory_compare import steps_of
from .vocabulary import STEP_FIELDS, label_of

__all__ = ["RecordedStep", "Recorder", "FIELDS", "load_trajectory"]

#: StepState tensors a Recorder can keep.
FIELDS = tuple(f.name for f in STEP_FIELDS)  # declared once, in blendlab.vocabulary


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
    ``recorder.init_image`` the (downscaled, float32) input, ``recorder.cfg`` the run's settings (its EditConfig; the
    LatentConfig of a Blended Latent Diffusion run) and
    ``recorder.preset`` the model preset of the run (None until a step is recorded).

    **Saving and loading.** ``recorder.save("run.npz")`` writes one self-describing file, atomically
    (a temporary file moved into place); ``Recorder.load("run.npz")`` (or
    :func:`blendlab.load_trajectory`) reads it back. The file is a numpy ``.npz``: an uncompressed zip
    archive (``numpy.load(path)`` opens it too) of

    - ``meta.json`` (UTF-8 JSON, the first member): ``format`` ("blendlab-trajectory"),
      ``format_version`` (1), ``blendlab_version``, ``preset``, ``config`` (every field of the settings),
      ``config_class`` ("EditConfig", or "LatentConfig" for Blended Latent Diffusion),
      ``recorder`` (every, fields, size, dtype, max_mb, thinned), ``mask`` and ``init_image``
      (``{"member", "dtype", "shape"}``), and ``steps``: one object per recorded step with
      ``iteration``, ``index`` (the step k, from 0), ``num_steps``, ``respaced_index`` (the sampler's
      respaced index, internal; files written before it had this name call it ``t``, and the file
      still holds that old key too, for one release), ``timestep`` (t of the 1000-step schedule),
      ``alpha_bar`` (ᾱ_t), ``losses`` ({term: float}),
      ``sample_ids`` (rows -> samples of the first batch) and ``fields`` ({name: {member, dtype, shape}});
    - ``mask.npy`` (1 or B, 1, h, w) float32 in {0, 1}, ``init_image.npy`` (1, 3, h, w) float32 in
      [-1, 1], and ``steps/<k:05d>/<field>.npy`` (B, 3, h, w) in the recording's dtype (bfloat16 is
      stored as its raw 16 bits, int16).

    Loading never runs code (JSON, and arrays read with ``allow_pickle=False``). With ``lazy=True``
    (the default) only ``meta.json``, the mask and the input are read at once; each step's fields are
    read on first access. A truncated, corrupt or foreign file raises
    :class:`blendlab.errors.TrajectoryError` saying what it is.

    **Videos.** :meth:`to_video` (and :meth:`to_gif`, :meth:`to_mp4`) write one field of one sample
    over the recorded steps, one frame per step, with ``step 3/10 · t=473`` under each frame.
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
            # the run's settings: a Blended Diffusion step's EditConfig, a latent step's LatentConfig
            self.cfg = state.cfg if state.cfg is not None else getattr(state, "settings", None)
            self.preset = state.preset
            self.prompt = getattr(self.cfg, "prompt", None)
        ids = None if state.sample_ids is None else tuple(int(i) for i in state.sample_ids.tolist())
        step = RecordedStep(
            iteration=state.iteration, index=state.index, respaced_index=state.respaced_index,
            alpha_bar=state.alpha_bar,
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
                    f"Recorder: the recording passed max_mb={self.max_mb:g} at "
                    f"{label_of(state)}, so every other recorded step is dropped (now every "
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

    # -- videos -------------------------------------------------------------------------------
    def _result_field(self) -> str | None:
        """The recorded field whose last value the result is made from, if any."""
        names = self.steps[0].fields if self.steps else self.fields
        if "pred_x0_guided" in names:
            return "pred_x0_guided"
        if "pred_x0" in names and self.cfg is not None and not self.cfg.ddim:
            return "pred_x0"  # the same tensor for DDPM
        return None

    def frames(self, field: str | None = None, sample: int = 0, iteration: int | None = None, *,
               final_paste: bool | None = None, label: bool = True, scale: int | None = None) -> list:
        """The frames :meth:`to_video` writes: PIL images, one per recorded step of ``iteration``.

        Args:
            field: a recorded field (default: the x̂0 the result is made from — ``pred_x0_guided``,
                or ``pred_x0`` for DDPM — else the first recorded field).
            sample: which sample of the batch (its row in the first step; pruning keeps the id).
            final_paste: paste the input outside the mask on the last frame, as the result is made
                (``EditConfig.enforce_background``), so the last frame is the saved result. None:
                when the field is the one the result is made from and the config pastes.
            label: write ``step k/n · t=…`` under each frame.  scale: see
                :func:`blendlab.video.captioned_frames`.
        """
        from .images import grad_heatmap, to_uint8
        from .masks import paste_background
        from .video import captioned_frames

        steps = steps_of(self, iteration)
        result_field = self._result_field()
        if field is None:
            field = result_field or next(iter(steps[0].fields))
        if field not in steps[0].fields:
            raise InputError(f"field {field!r} was not recorded; recorded: {', '.join(steps[0].fields)}")
        rows = []
        for s in steps:
            ids = s.sample_ids if s.sample_ids is not None else tuple(range(s.fields[field].shape[0]))
            if sample not in ids:
                if s is steps[0]:
                    raise InputError(f"sample {sample} out of range: the batch has {len(ids)} samples")
                break  # pruned away here: its frames end
            rows.append((s, ids.index(sample)))
        ended = len(rows) < len(steps)
        can_paste = (field == result_field and self.cfg is not None and self.cfg.pastes_background
                     and self.init_image is not None and self.mask is not None and not ended)
        if final_paste is None:
            final_paste = can_paste
        elif final_paste and not can_paste:
            raise InputError(
                f"cannot paste the background into the last frame of {field!r}: that needs the x̂0 the result "
                "is made from (record 'pred_x0_guided'), a run with enforce_background, the input and the mask "
                "(recorded from bl.edit / BlendedSampler), and a sample that was not pruned")
        images, captions = [], []
        for k, (s, row) in enumerate(rows):
            x = s.fields[field][row:row + 1]
            text = s.label
            if final_paste and k == len(rows) - 1:
                mask = self.mask[sample:sample + 1] if self.mask.shape[0] > 1 else self.mask
                x = paste_background(x.float(), self.init_image, mask)
                text += " · result"
            if field == "grad":
                images.append(grad_heatmap(x[0]))
            else:
                images.append(to_uint8(x))
            captions.append(text if label else "")
        return captioned_frames(images, captions, scale=scale)

    def to_video(self, path, field: str | None = None, sample: int = 0, iteration: int | None = None, *,
                 fps: float = 8, final_paste: bool | None = None, label: bool = True,
                 scale: int | None = None) -> Path:
        """Write one field of one sample over the recorded steps as an animation, one frame per step
        (the format follows the suffix: .gif, .apng/.png and .webp lossless, .mp4 with imageio; see
        :mod:`blendlab.video`). Arguments as :meth:`frames`. Atomic; returns the path."""
        from .video import write_video

        return write_video(path, self.frames(field, sample, iteration, final_paste=final_paste, label=label,
                                             scale=scale), fps=fps)

    def to_gif(self, path, field: str | None = None, sample: int = 0, iteration: int | None = None,
               **kwargs) -> Path:
        """:meth:`to_video` to a ``.gif`` (PIL; at most 256 colours per frame)."""
        return self.to_video(_suffixed(path, ".gif"), field, sample, iteration, **kwargs)

    def to_mp4(self, path, field: str | None = None, sample: int = 0, iteration: int | None = None,
               **kwargs) -> Path:
        """:meth:`to_video` to an ``.mp4`` (needs ``pip install "imageio[ffmpeg]"``)."""
        return self.to_video(_suffixed(path, ".mp4"), field, sample, iteration, **kwargs)


def _suffixed(path, suffix: str) -> Path:
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise InputError(f"{path.name!r} does not end in {suffix}; name the file *{suffix} or use to_video()")
    return path


def load_trajectory(path, *, lazy: bool = True) -> Recorder:
    """Read a recording saved by :meth:`Recorder.save` (same as ``Recorder.load``)."""
    return Recorder.load(path, lazy=lazy)
