"""The progress bar hook: a tqdm.auto bar over the steps (a widget in notebooks, text in terminals).

May import: sampler.
"""

from __future__ import annotations

from .sampler import StepState

__all__ = ["ProgressBar"]


class ProgressBar:
    """A tqdm.auto bar over the steps: a widget in notebooks, text in terminals.

    With ``loss_every=k`` it also shows the losses every k steps; reading them makes the host wait for
    the device, so the default (0) does not, and the step loop stays free of host syncs.
    """

    def __init__(self, loss_every: int = 0, **tqdm_kwargs):
        self.loss_every = loss_every
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None
        self._losses: dict[str, str] = {}

    def __call__(self, state: StepState) -> None:
        from tqdm.auto import tqdm

        if state.index == 0 or self.bar is None:
            if self.bar is not None:
                self.bar.close()
            desc = f"sample batch {state.iteration + 1}"
            self.bar = tqdm(total=state.num_steps, desc=desc, leave=False, **self.tqdm_kwargs)
        self.bar.update(1)
        if self.loss_every and state.index % self.loss_every == 0 and state.loss_tensors:
            self._losses = {k: f"{v:.3g}" for k, v in state.losses.items()}
        # the bar counts finished steps; t is the step's timestep of the 1000-step schedule (as every label)
        last = state.index == state.num_steps - 1
        self.bar.set_postfix({"t": state.timestep, **self._losses}, refresh=last)  # the last t shows too
        if last:
            self.close()

    def close(self) -> None:
        """Close (and clear) the bar of a run that ended early, e.g. on an error."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
