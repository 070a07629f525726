"""Step hooks: what a hook is, the built-in ones' names, and the CLI's per-sample video writer.

A hook is any callable taking a :class:`blendlab.sampler.StepState`; returning a new StepState
replaces it (see :meth:`BlendedSampler.steps`). The built-in hooks live in rooms of their own and
keep their names here: :class:`~blendlab.recorder.Recorder` (with :func:`load_trajectory`,
:data:`FIELDS`) and :class:`~blendlab.progress.ProgressBar`. :class:`IterationVideos` (``blendlab
edit --vid``) is a Recorder that writes one video per sample when an iteration ends.

May import: progress, recorder.
"""

from __future__ import annotations

from pathlib import Path

from .progress import ProgressBar
from .recorder import FIELDS, RecordedStep, Recorder, load_trajectory

__all__ = ["RecordedStep", "Recorder", "IterationVideos", "ProgressBar", "FIELDS", "load_trajectory"]


class IterationVideos:
    """A hook (the CLI's ``--vid``): one video per sample of x̂0 over every step, at the model's size.

    It records the x̂0 the result is made from (``pred_x0_guided``: DDIM's guided one, DDPM's
    ``pred_x0``) and, when an iteration ends, writes a video per surviving sample with
    :meth:`Recorder.to_video` (the last frame has the background pasted as the result has) and drops
    the frames: memory holds one iteration's frames, and every step is kept.
    """

    def __init__(self, cfg, image_size: int, out: Path, suffix: str):
        need_mb = cfg.num_steps * cfg.batch_size * 3 * image_size**2 * 2 / 2**20  # float16 frames
        self.recorder = Recorder(every=1, fields=("pred_x0_guided",), max_mb=need_mb + 16)
        self.cfg, self.out, self.suffix = cfg, out, suffix
        self.paths: list[Path] = []

    def __call__(self, state) -> None:
        self.recorder(state)
        if state.index == state.num_steps - 1:
            for b in state.sample_ids.tolist():
                name = self.cfg.sample_file(state.iteration, b, self.suffix)
                self.paths.append(self.recorder.to_video(self.out / name, sample=b, iteration=state.iteration))
            self.recorder.steps = []

    def discard(self) -> None:
        """Delete the videos written so far (a run that fails leaves no partial output)."""
        for path in self.paths:
            Path(path).unlink(missing_ok=True)
        self.paths = []
