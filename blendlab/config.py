"""EditConfig: every setting of an edit in one place, the reference's flags with their defaults.

The one source of defaults: the CLI's flags, the widgets' forms and the notebooks read it. Each
setting is validated when the config is made, with an error that names the fix; a misspelt name
(``EditConfig(promt=...)``) is an :class:`~blendlab.errors.UnknownSettingError` naming the closest one.

May import: errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers

from .errors import InputError, UnknownSettingError

__all__ = ["EditConfig", "unknown_setting", "name_unknown_settings"]

#: Steps of the diffusion schedule every respacing is drawn from.
SCHEDULE_STEPS = 1000
_RESPACING_HELP = ("use a step count from 1 to 1000 such as '100' (the reference's), 'ddim50', "
                   "or section counts such as '10,10,10'")


def unknown_setting(name: str, known, owner: str = "EditConfig") -> UnknownSettingError:
    """The error for a keyword ``name`` that is none of ``known`` (the fields of ``owner``): it names
    the closest one."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"the settings are {owner}'s fields (help({owner}))"
    return UnknownSettingError(f"unknown setting {name!r} — {hint}")


def _respaced_steps(respacing) -> int:
    """Number of steps ``timestep_respacing`` keeps of the 1000-step schedule; InputError with the
    valid range otherwise (guided_diffusion itself accepts '-10' or '0' and keeps no step)."""
    from guided_diffusion.respace import space_timesteps

    text = str(respacing).strip()
    where = f"timestep_respacing={respacing!r}"
    body = text[4:] if text.startswith("ddim") else text
    try:
        counts = [int(part) for part in body.split(",")]
    except ValueError:
        raise InputError(f"{where} is not understood; {_RESPACING_HELP}") from None
    if text.startswith("ddim") and len(counts) > 1:
        raise InputError(f"{where} is not understood: 'ddim' takes one step count, e.g. 'ddim50'")
    if min(counts) < 0 or sum(counts) < 1:
        asked = f"a negative step count ({min(counts)})" if min(counts) < 0 else f"{sum(counts)} steps"
        raise InputError(f"{where} asks for {asked}; the step count must be from 1 to "
                         f"{SCHEDULE_STEPS}, e.g. timestep_respacing='100'")
    if len(counts) == 1 and counts[0] > SCHEDULE_STEPS:
        raise InputError(f"{where} asks for more steps than the schedule's {SCHEDULE_STEPS}; "
                         f"use a step count from 1 to {SCHEDULE_STEPS}, e.g. timestep_respacing='100'")
    try:
        return len(space_timesteps(SCHEDULE_STEPS, text))
    except ValueError as exc:
        if text.startswith("ddim"):
            raise InputError(f"{where}: no whole-number stride takes exactly {counts[0]} of the "
                             f"{SCHEDULE_STEPS} steps; use e.g. 'ddim50' or 'ddim100'") from None
        raise InputError(f"{where} is not understood ({exc}); {_RESPACING_HELP}") from None
    except TypeError as exc:
        raise InputError(f"{where} is not understood ({exc}); {_RESPACING_HELP}") from None


@dataclasses.dataclass
class EditConfig:
    """Every flag of the reference ``main.py``: same names, same defaults (plus a few extras).

    ``model_output_size`` picks the model in the CLI (256 -> "256-uncond", 512 -> "512-cond"); the
    sampler itself works at ``models.image_size``.

    Extras beyond the reference (defaults keep the paper's behaviour):
        ddim_eta: DDIM stochasticity (the reference uses 0).
        anti_typography_lambda: weight of a loss pushing the masked views away from CLIP's
            embedding of the prompt rendered as text, relative to neutral words rendered as text
            (:func:`blendlab.guidance.typography_direction`); 0 = off.
        prune_at, keep: progressive pruning. After ``round(prune_at * num_steps)`` steps the batch
            is ranked by the (unaugmented, masked) CLIP distance of x̂0 and only the best ``keep``
            samples continue, so many candidates cost far less than as many full samples.
        reference_ranking: rank (and prune) by the reference's distances, the masked views fed to
            CLIP without CLIP's input normalisation (``masked_clip_distance(..., normalize=False)``).
            Default False: blendlab normalises them, as CLIP was trained (see the README).

    Fast modes (issue 11; ``benchmarks/quality_per_second.py`` measures what each gives up). The
    defaults are the paper's algorithm, every step guided with the full gradient and ``aug_num`` views:
        guidance_every: compute the guidance gradient on every k-th step only (steps 0, k, 2k, ...);
            the steps between run the UNet without gradients.
        guidance_between: what the steps between apply: "reuse" the last computed gradient (cached,
            exactly) or "none" (zero gradient, an unguided step).
        guidance_until: guide only the first ``guidance_until`` fraction of the steps; the rest run
            unguided (guidance in a limited interval: Castillo et al. 2023, "Adaptive Guidance";
            Kynkäänniemi et al. 2024). 1.0 = every step.
        guidance_gradient: "unet" (the paper): −∇ of the loss w.r.t. x_t, back-propagated through
            the UNet. "mpgd": Jacobian-free: the UNet runs without gradients and the loss gradient
            w.r.t. x̂0 is mapped to x_t with ε̂ held constant, ∂x̂0/∂x_t = 1/√ᾱ_t (the shortcut of
            He et al., ICLR 2024, "Manifold Preserving Guided Diffusion", without its projection;
            "mean guidance" in Ye et al., NeurIPS 2024, "TFG"). No backward pass through the UNet.
        late_aug_num, late_at: from step ``round(late_at · num_steps)`` on, use ``late_aug_num`` CLIP
            views instead of ``aug_num`` (None = ``aug_num`` throughout).
    """

    prompt: str = ""
    init_image: str | None = None
    mask: str | None = None
    skip_timesteps: int = 25
    local_clip_guided_diffusion: bool = False
    ddim: bool = False
    timestep_respacing: str = "100"
    model_output_size: int = 256
    aug_num: int = 8
    clip_guidance_lambda: float = 1000
    range_lambda: float = 50
    lpips_sim_lambda: float = 1000
    l2_sim_lambda: float = 10000
    background_preservation_loss: bool = False
    invert_mask: bool = False
    enforce_background: bool = True
    seed: int | None = 404
    gpu_id: int = 0
    output_path: str = "output"
    output_file: str = "output.png"
    iterations_num: int = 8
    batch_size: int = 4
    save_video: bool = False
    export_assets: bool = False
    ddim_eta: float = 0.0
    anti_typography_lambda: float = 0.0
    prune_at: float | None = None
    keep: int | None = None
    reference_ranking: bool = False
    guidance_every: int = 1
    guidance_between: str = "reuse"
    guidance_until: float = 1.0
    guidance_gradient: str = "unet"
    late_aug_num: int | None = None
    late_at: float = 0.5

    def __post_init__(self):
        if not isinstance(self.prompt, str):
            raise InputError(f"prompt must be a string, got {type(self.prompt).__name__}")
        for name in ("aug_num", "iterations_num", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.model_output_size not in (256, 512):
            raise InputError(f"model_output_size must be 256 or 512, got {self.model_output_size}")
        self._check_steps()
        if not 0 <= self.ddim_eta <= 1:
            raise InputError(f"ddim_eta must be in [0, 1], got {self.ddim_eta}")
        if self.anti_typography_lambda < 0:
            raise InputError("anti_typography_lambda must be >= 0 (0 = the paper's behaviour)")
        if (self.prune_at is None) != (self.keep is None):
            raise InputError("progressive pruning needs both prune_at (a fraction of the steps) and keep")
        if self.prune_at is not None:
            if not 0 < self.prune_at < 1:
                raise InputError(f"prune_at must be a fraction of the steps in (0, 1), got {self.prune_at}")
            if not 1 <= self.keep <= self.batch_size:
                raise InputError(f"keep must be between 1 and batch_size={self.batch_size}, got {self.keep}")
        self._check_fast_modes()

    def _check_steps(self):
        """Validate ``timestep_respacing`` and ``skip_timesteps`` together: the advice names the range."""
        n = self.num_steps_total()
        skip = self.skip_timesteps
        whole = isinstance(skip, numbers.Integral) and not isinstance(skip, bool)
        if whole and 0 <= skip < n:
            return
        fix = f"skip_timesteps must be a whole number from 0 to {n - 1} (0 = start from pure noise)"
        if not whole:
            raise InputError(f"skip_timesteps={skip!r} is not a whole number of steps; {fix}")
        if skip < 0:
            raise InputError(f"skip_timesteps={skip} is negative; {fix}")
        raise InputError(f"skip_timesteps={skip} leaves no step of the {n} respaced steps "
                         f"(timestep_respacing={self.timestep_respacing!r}); {fix}, or respace to more "
                         f"than {skip} steps (e.g. timestep_respacing='{max(100, 2 * skip)}')")

    def _check_fast_modes(self):
        """Validate the fast-mode fields (see the class docstring)."""
        if isinstance(self.guidance_every, bool) or not isinstance(self.guidance_every, int) or self.guidance_every < 1:
            raise InputError(f"guidance_every must be a whole number of steps >= 1 (1 = every step), "
                             f"got {self.guidance_every!r}")
        if self.guidance_between not in ("reuse", "none"):
            raise InputError(f"guidance_between must be 'reuse' (the last gradient) or 'none' (no guidance), "
                             f"got {self.guidance_between!r}")
        if not 0 < self.guidance_until <= 1:
            raise InputError(f"guidance_until must be the guided fraction of the steps in (0, 1], "
                             f"got {self.guidance_until!r}")
        if self.guidance_gradient not in ("unet", "mpgd"):
            raise InputError(f"guidance_gradient must be 'unet' (through the UNet, the paper) or 'mpgd' "
                             f"(Jacobian-free, w.r.t. x̂0), got {self.guidance_gradient!r}")
        if self.late_aug_num is not None:
            if isinstance(self.late_aug_num, bool) or not isinstance(self.late_aug_num, int) \
                    or not 1 <= self.late_aug_num <= self.aug_num:
                raise InputError(f"late_aug_num must be a number of views between 1 and aug_num={self.aug_num}, "
                                 f"got {self.late_aug_num!r}")
        if not 0 < self.late_at < 1:
            raise InputError(f"late_at must be a fraction of the steps in (0, 1), got {self.late_at!r}")

    def num_steps_total(self) -> int:
        """Number of respaced steps, before skipping."""
        return _respaced_steps(self.timestep_respacing)

    @property
    def num_steps(self) -> int:
        """Reverse steps actually run: respaced steps minus skipped ones."""
        return self.num_steps_total() - self.skip_timesteps

    @property
    def prune_index(self) -> int | None:
        """Index of the step after which the batch is pruned, or None."""
        if self.prune_at is None:
            return None
        return min(self.num_steps - 1, max(0, round(self.prune_at * self.num_steps) - 1))

    def guidance_at(self, index: int, num_steps: int | None = None) -> str:
        """What step ``index`` does for guidance: "compute" a fresh gradient, "reuse" the last one, or
        "none" (``guidance_every``, ``guidance_between``, ``guidance_until``; always "compute" by default).
        ``num_steps``: :attr:`num_steps` when the caller knows it (the plan does), else worked out."""
        n = self.num_steps if num_steps is None else num_steps
        if index >= max(1, round(self.guidance_until * n)):
            return "none"
        if index % self.guidance_every == 0:
            return "compute"
        return "reuse" if self.guidance_between == "reuse" else "none"

    def views_at(self, index: int, num_steps: int | None = None) -> int:
        """CLIP views of the guidance at step ``index``: ``aug_num``, or ``late_aug_num`` from
        ``round(late_at · num_steps)`` on (``num_steps`` as for :meth:`guidance_at`)."""
        n = self.num_steps if num_steps is None else num_steps
        if self.late_aug_num is None or index < round(self.late_at * n):
            return self.aug_num
        return self.late_aug_num

    @property
    def guided(self) -> bool:
        """Whether any guidance gradient is computed (the reference returns zeros for an empty prompt)."""
        background = self.background_preservation_loss and (self.lpips_sim_lambda or self.l2_sim_lambda)
        return self.prompt != "" and bool(self.clip_guidance_lambda or self.range_lambda or background)

    @property
    def pastes_background(self) -> bool:
        """Whether a result is its last x̂0 with the input pasted outside the mask
        (``enforce_background``, not in ``local_clip_guided_diffusion`` mode), as the reference."""
        return self.enforce_background and not self.local_clip_guided_diffusion

    def sample_file(self, iteration: int, index: int, suffix: str = ".png") -> str:
        """Reference file naming of one sample: ``<stem>_i_<iteration>_b_<batch index><suffix>``."""
        return f"{self.output_file.rsplit('.', 1)[0]}_i_{iteration}_b_{index}{suffix}"

    def replace(self, **changes) -> "EditConfig":
        return dataclasses.replace(self, **changes)


def name_unknown_settings(cls):
    """Wrap the dataclass ``cls``'s ``__init__`` so that an unknown keyword names the closest setting
    (:func:`unknown_setting`); returns ``cls``. EditConfig and blendlab.latent's LatentConfig use it."""
    fields = [f.name for f in dataclasses.fields(cls)]
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        for name in kwargs:
            if name not in fields:
                raise unknown_setting(name, fields, cls.__name__)
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


name_unknown_settings(EditConfig)
