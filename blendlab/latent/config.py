"""LatentConfig: every setting of a Blended Latent Diffusion edit, with the reference's defaults, validated.

The names follow the reference scripts (omriav/blended-latent-diffusion: ``text_editing_SD2.py`` and
the LDM editor): ``blending_start`` is its ``blending_start_percentage``, ``mask_dilation_iterations``
and ``pixel_blending`` (its ``percentage_of_pixel_blending``) are the same options. Each value is
checked when the config is made, with an error that names the fix; a misspelt name is a
:class:`~blendlab.errors.UnknownSettingError` naming the closest one, as for ``EditConfig``.

May import: errors, config, trajectory.
"""

from __future__ import annotations

import dataclasses
import numbers

from ..config import name_unknown_settings
from ..errors import InputError
from ..trajectory import SETTINGS_CLASSES

__all__ = ["LatentConfig", "BACKGROUND_LEVELS", "RECONSTRUCTIONS"]

#: Which noise level the source latents outside the mask are noised to (see blendlab.latent.sampler).
BACKGROUND_LEVELS = ("output", "input")
#: Background reconstruction after decoding (blendlab.latent.reconstruct).
RECONSTRUCTIONS = ("none", "pixel", "poisson", "optimization")


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclasses.dataclass
class LatentConfig:
    """The settings of one Blended Latent Diffusion edit.

    Fields (defaults: the reference's Stable Diffusion script, except where noted):
        prompt: the text the masked region should show. negative_prompt: the "unconditional" text of
            classifier-free guidance ("" as the reference).
        num_steps: DDIM steps of the whole schedule (50); the run skips the first ``blending_start``
            fraction of them (the reference's ``blending_start_percentage``, 0.25) and starts from the
            source latents noised to the first kept timestep, so ``steps_run`` steps are run.
        guidance_scale: classifier-free guidance s, ε = ε(z, neg) + s·(ε(z, prompt) − ε(z, neg)) (7.5);
            1 = a single conditional UNet pass, no guidance.
        batch_size: samples per run (4). seed: of the run's torch.Generator (42, as the reference).
        ddim_eta: DDIM stochasticity η (0, deterministic).
        background_level: the noise level of the source latents blended in outside the mask at each
            step: "input" (default) noises them to the step's input level t, one step noisier than the
            latent they replace, as the reference's scripts and the paper's Algorithm 1 do (and as
            Blended Diffusion's background); "output" noises them to the level of the step's output
            z_{t'}. See blendlab.latent.sampler.
        mask_dilation_iterations: progressive mask shrinking for thin masks (0 = off). With n > 0 the
            steps are split into n + 1 even parts; the first uses the latent mask dilated by n cells,
            the next by n − 1, ..., the last the mask itself (the reference's LDM editor).
        pixel_blending: the last fraction of the steps blended in pixels instead of latents: x̂0 is
            decoded, the source pasted outside the mask, the result encoded and noised to the
            background level (0 = off, the reference's default).
        reconstruction: what happens to the decoded result: "none" (the reference), "pixel" (paste
            the source outside the mask: the outside is the input exactly) or "poisson" (seamless
            cloning of the edit into the source, blendlab.latent.reconstruct.poisson_blend).
        invert_mask: edit outside the mask instead (the mask's 1 = keep).
    """

    prompt: str = ""
    negative_prompt: str = ""
    num_steps: int = 50
    blending_start: float = 0.25
    guidance_scale: float = 7.5
    batch_size: int = 4
    seed: int | None = 42
    ddim_eta: float = 0.0
    background_level: str = "input"
    mask_dilation_iterations: int = 0
    pixel_blending: float = 0.0
    reconstruction: str = "none"
    invert_mask: bool = False

    def __post_init__(self):
        for name in ("prompt", "negative_prompt"):
            if not isinstance(getattr(self, name), str):
                raise InputError(f"{name} must be a string, got {type(getattr(self, name)).__name__}")
        if not self.prompt.strip() and self.guided and not self.negative_prompt.strip():
            raise InputError(f"the prompt is empty, so classifier-free guidance (guidance_scale="
                             f"{self.guidance_scale:g}) has nothing to steer towards; give a prompt "
                             "(\"a red circle\"), or a negative_prompt to steer away from, or guidance_scale=1")
        for name, low in (("num_steps", 1), ("batch_size", 1), ("mask_dilation_iterations", 0)):
            value = getattr(self, name)
            if not _whole(value) or value < low:
                raise InputError(f"{name} must be a whole number >= {low}, got {value!r}")
        if self.num_steps > 1000:
            raise InputError(f"num_steps={self.num_steps} is more than the 1000 training timesteps; use at "
                             "most 1000 (the reference uses 50)")
        if not isinstance(self.blending_start, numbers.Real) or not 0 <= self.blending_start < 1:
            raise InputError(f"blending_start must be the skipped fraction of the steps in [0, 1), got "
                             f"{self.blending_start!r} (the reference skips 0.25)")
        if not isinstance(self.guidance_scale, numbers.Real) or not self.guidance_scale >= 0:
            raise InputError(f"guidance_scale must be a number >= 0 (1 = no guidance, the reference "
                             f"uses 7.5), got {self.guidance_scale!r}")
        if not isinstance(self.ddim_eta, numbers.Real) or not 0 <= self.ddim_eta <= 1:
            raise InputError(f"ddim_eta must be in [0, 1] (0 = deterministic DDIM), got {self.ddim_eta!r}")
        if not isinstance(self.pixel_blending, numbers.Real) or not 0 <= self.pixel_blending <= 1:
            raise InputError(f"pixel_blending must be the fraction of the last steps blended in pixels, "
                             f"in [0, 1] (0 = off), got {self.pixel_blending!r}")
        if self.seed is not None and not _whole(self.seed):
            raise InputError(f"seed must be a whole number or None, got {self.seed!r}")
        for name, choices in (("background_level", BACKGROUND_LEVELS), ("reconstruction", RECONSTRUCTIONS)):
            if getattr(self, name) not in choices:
                raise InputError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                                 f"got {getattr(self, name)!r}")

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance runs (two UNet passes per step): ``guidance_scale != 1``."""
        return self.guidance_scale != 1

    @property
    def steps_skipped(self) -> int:
        """Steps of the ``num_steps`` schedule that are skipped: ``int(num_steps · blending_start)``."""
        return int(self.num_steps * self.blending_start)

    @property
    def steps_run(self) -> int:
        """Steps actually run (``StepState.num_steps`` of the run)."""
        return self.num_steps - self.steps_skipped  # at least 1: blending_start < 1

    @property
    def pixel_from(self) -> int:
        """The first step (0-based, of ``steps_run``) blended in pixels; ``steps_run`` when none is."""
        return int(self.steps_run * (1 - self.pixel_blending))

    @property
    def ddim(self) -> bool:
        """True: BLD always takes DDIM steps (read by tools written for EditConfig, e.g. the Recorder)."""
        return True

    @property
    def pastes_background(self) -> bool:
        """Whether the result is the input outside the mask exactly: ``reconstruction == "pixel"``."""
        return self.reconstruction == "pixel"

    @property
    def reference_ranking(self) -> bool:
        """False: samples are ranked by the normalised masked CLIP distance (as ``EditConfig``'s default)."""
        return False

    def mask_index(self, index: int) -> int:
        """Which mask step ``index`` blends with: 0 = dilated most, ``mask_dilation_iterations`` = the
        mask itself (the reference's ``i // (steps // masks + 1)``)."""
        masks = self.mask_dilation_iterations + 1
        return min(masks - 1, index // (self.steps_run // masks + 1))

    def replace(self, **changes) -> "LatentConfig":
        return dataclasses.replace(self, **changes)


name_unknown_settings(LatentConfig)
SETTINGS_CLASSES["LatentConfig"] = LatentConfig  # trajectory files of BLD runs read back as LatentConfigs
