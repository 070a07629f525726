"""Algorithm 1 of Blended Diffusion, one reverse step at a time.

    x_T' ~ q(x_T' | x0)                        start from the input, noised to the first kept step
    for t = T', ..., 1:
        x̂0, μ, Σ   = p_θ(x_t)                   ONE UNet forward, with grad w.r.t. x_t
        g          = −∇_{x_t} L_guidance(x̂0, x_t)
        x_fg       ~ N(μ + Σ g, Σ)               DDPM (condition_mean); DDIM uses condition_score
        x_bg       ~ q(x_t | x0)                  the input noised to this step's level
        x_{t−1}    = x_fg ⊙ m + x_bg ⊙ (1 − m)
    result = x̂0 ⊙ m + x0 ⊙ (1 − m)             (enforce_background)

The semantics follow the authors' reference implementation (omriav/blended-diffusion) on top of
guided_diffusion: the same flags and defaults, ``q_sample`` of the input at the current ``t`` for the
background (one noise draw shared by the batch), the final background paste. Differences: the UNet
runs once per step instead of twice, every random draw comes from one ``torch.Generator``, and
kornia's augmentations are seeded from it.

May import: errors, images, masks, models, embeddings, guidance.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator

import torch

from .embeddings import encode_text, masked_clip_distance
from .errors import InputError
from .guidance import GuidanceLoss
from .images import check_image
from .masks import edit_mask, paste_background
from .models import create_diffusion  # noqa: F401  (re-exported: blendlab.sampler.create_diffusion)

__all__ = ["EditConfig", "StepState", "BlendedSampler", "Hook", "create_diffusion"]


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
        if self.skip_timesteps < 0:
            raise InputError(f"skip_timesteps must be >= 0, got {self.skip_timesteps}")
        if self.model_output_size not in (256, 512):
            raise InputError(f"model_output_size must be 256 or 512, got {self.model_output_size}")
        n = self.num_steps_total()
        if self.skip_timesteps >= n:
            raise InputError(
                f"skip_timesteps={self.skip_timesteps} leaves no step of the {n} respaced steps "
                f"(timestep_respacing={self.timestep_respacing!r}); use fewer skipped steps"
            )
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
        from guided_diffusion.respace import space_timesteps

        try:
            return len(space_timesteps(1000, str(self.timestep_respacing)))
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"timestep_respacing={self.timestep_respacing!r} is not understood ({exc}); "
                "use a step count such as '100', 'ddim50' or section counts '10,10,10'"
            ) from None

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

    def guidance_at(self, index: int) -> str:
        """What step ``index`` does for guidance: "compute" a fresh gradient, "reuse" the last one, or
        "none" (``guidance_every``, ``guidance_between``, ``guidance_until``; always "compute" by default)."""
        if index >= max(1, round(self.guidance_until * self.num_steps)):
            return "none"
        if index % self.guidance_every == 0:
            return "compute"
        return "reuse" if self.guidance_between == "reuse" else "none"

    def views_at(self, index: int) -> int:
        """CLIP views of the guidance at step ``index``: ``aug_num``, or ``late_aug_num`` from
        ``round(late_at · num_steps)`` on."""
        if self.late_aug_num is None or index < round(self.late_at * self.num_steps):
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


@dataclasses.dataclass
class StepState:
    """What one reverse step saw and produced. Image tensors are (B, 3, H, W) in model space.

    Fields:
        index: step number from 0.  t: timestep index in ``sampler.diffusion`` (counts down).
        timestep: the timestep of the 1000-step schedule that ``t`` stands for (what figures show).
        x_t: input of this step.  pred_x0: x̂0 the UNet predicted from x_t (the loss's input).
        pred_x0_guided: for DDIM the x̂0 after ``condition_score`` (the reference's result);
            the same tensor as pred_x0 for DDPM.
        grad: −∇_{x_t} of the total guidance loss (zeros when unguided).
        fg: guided x_{t−1} before blending.  bg: the input noised by ``q_sample`` at this t.
        x_prev: x_{t−1} after blending (``fg`` in local_clip_guided_diffusion mode). A hook or a
            loop over ``steps()`` may replace it; the next step starts from the replaced tensor.
        mask: (1, 1, H, W) the blend used.  alpha_bar: ᾱ_t.  num_steps: steps in this trajectory.
        iteration: which of ``cfg.iterations_num`` batches (set by :func:`blendlab.edit`).
        y: class labels of a class-conditional model, else None.
        loss_tensors: unweighted loss terms as 0-d tensors (kept on device until read).
        clip_per_sample: (B,) view-averaged CLIP distance of each sample, when CLIP guidance is on.
        sample_ids: (B,) which samples of the initial batch these rows are (changes after pruning).
        kept, prune_scores: at the prune step only: the rows that continue (best first) and every
            row's masked CLIP distance of x̂0 that chose them.
        init_image: (1, 3, H, W) the input x0 that ``bg`` is noised from.  cfg: the EditConfig.
        preset: the model preset's name. (These three are context for recorders; the same objects
            every step, never copies.)
    """

    index: int
    t: int
    x_t: torch.Tensor
    pred_x0: torch.Tensor
    pred_x0_guided: torch.Tensor
    grad: torch.Tensor
    fg: torch.Tensor
    bg: torch.Tensor
    x_prev: torch.Tensor
    mask: torch.Tensor
    alpha_bar: float
    num_steps: int = 0
    iteration: int = 0
    y: torch.Tensor | None = None
    loss_tensors: dict = dataclasses.field(default_factory=dict)
    clip_per_sample: torch.Tensor | None = None
    sample_ids: torch.Tensor | None = None
    kept: torch.Tensor | None = None
    prune_scores: torch.Tensor | None = None
    timestep: int | None = None
    init_image: torch.Tensor | None = None
    cfg: EditConfig | None = None
    preset: str | None = None

    @property
    def losses(self) -> dict[str, float]:
        """Loss terms as floats: "clip", "range", "typography" when on, "l2"/"lpips" in baseline mode."""
        return {k: float(v) for k, v in self.loss_tensors.items()}


Hook = Callable[[StepState], "StepState | None"]


def _const(fn_value: torch.Tensor):
    """A guided_diffusion cond_fn that returns an already computed gradient."""
    return lambda x, t, **kwargs: fn_value


class BlendedSampler:
    """Blended Diffusion for one batch: iterate :meth:`steps` or call :meth:`run`.

    Args:
        models: from :func:`blendlab.load_models`.
        image: (1, 3, H, W) in [-1, 1] at ``models.image_size``.
        mask: (1, 1, H, W) in {0, 1}, 1 = edit. ``cfg.invert_mask`` is applied here.
        cfg: the :class:`EditConfig`.
        generator: a ``torch.Generator`` on ``models.device``; default: seeded from ``cfg.seed``.

    ``sampler.init_image`` and ``sampler.mask`` are the tensors actually used; ``sampler.diffusion``
    is the guided_diffusion ``SpacedDiffusion``; ``sampler.loss`` is the :class:`GuidanceLoss` (None
    when unguided) and is read at every step, so setting it to None inside a loop over
    :meth:`steps` stops the guidance from the next step on.
    """

    def __init__(self, models, image, mask, cfg: EditConfig, generator: torch.Generator | None = None):
        self.models = models
        self.cfg = cfg
        device = models.device
        check_image(image, size=models.image_size)
        mask = edit_mask(mask, image, invert=cfg.invert_mask, batch_size=cfg.batch_size)
        self.init_image = image.to(device=device, dtype=torch.float32)
        self.mask = mask.to(device=device, dtype=torch.float32)
        self.diffusion = create_diffusion(models, cfg.timestep_respacing)
        if generator is None:
            generator = torch.Generator(device=device)
            generator.manual_seed(cfg.seed if cfg.seed is not None else torch.seed())
        self.generator = generator
        self.iteration = 0
        self.last_grad = None  # the last computed guidance gradient (reused by guidance_every)
        self.text_embed = encode_text(models.clip, cfg.prompt) if cfg.guided or cfg.prune_at else None
        self.loss = GuidanceLoss(models, cfg, self.init_image, self.mask, self.text_embed) if cfg.guided else None

    # -- randomness -------------------------------------------------------------------------
    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.models.device)

    @property
    def timesteps(self) -> list[int]:
        """Indices into ``self.diffusion`` visited by the reverse process, high to low."""
        return list(range(self.diffusion.num_timesteps - self.cfg.skip_timesteps))[::-1]

    def initial_noise(self) -> torch.Tensor:
        return self._randn(self.cfg.batch_size, 3, *self.init_image.shape[-2:])

    def start(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x at the first kept step: ``q_sample(x0, t_start, noise)`` for the whole batch."""
        if noise is None:
            noise = self.initial_noise()
        b = noise.shape[0]
        t0 = torch.full((b,), self.timesteps[0], device=noise.device, dtype=torch.long)
        return self.diffusion.q_sample(self.init_image.expand(b, -1, -1, -1), t0, noise=noise)

    # -- the loop ---------------------------------------------------------------------------
    def steps(self, hooks: Iterable[Hook] = (), x_start: torch.Tensor | None = None) -> Iterator[StepState]:
        """Yield one :class:`StepState` per reverse step.

        After each step, every hook is called with the state; a hook returning a StepState replaces
        it. The loop continues from ``state.x_prev`` as it is *after* the yield, so code iterating
        over ``steps()`` may also assign ``state.x_prev``.
        """
        cfg, models = self.cfg, self.models
        hooks = list(hooks)
        x = self.start() if x_start is None else x_start
        ids = torch.arange(x.shape[0], device=x.device)
        mask = self.mask
        seeds = torch.randint(0, 2**62, (len(self.timesteps),), generator=self.generator,
                              device=self.generator.device).tolist()
        blend = not cfg.local_clip_guided_diffusion
        prune_index = cfg.prune_index
        for index, i in enumerate(self.timesteps):
            b = x.shape[0]
            t = torch.full((b,), i, device=x.device, dtype=torch.long)
            model_kwargs = {}
            if models.num_classes is not None:  # the reference draws a random class every step
                model_kwargs["y"] = torch.randint(0, models.num_classes, (b,), generator=self.generator, device=x.device)
            state = self.step(index, i, t, x, model_kwargs, seeds[index], blend, mask)
            state.sample_ids = ids
            if index == prune_index and cfg.keep < b:
                state.prune_scores = self.prune_scores(state)
                state.kept = torch.argsort(state.prune_scores, stable=True)[: cfg.keep]
            for hook in hooks:
                new = hook(state)
                if new is not None:
                    state = new
            yield state
            x = state.x_prev
            if state.kept is not None:
                x, ids = x[state.kept], ids[state.kept]
                if self.last_grad is not None:  # a cached gradient (guidance_every) follows its rows
                    self.last_grad = self.last_grad[state.kept]
                if mask.shape[0] > 1:
                    mask = mask[state.kept]

    def prune_scores(self, state: StepState) -> torch.Tensor:
        """(B,) masked, unaugmented CLIP distance of this step's x̂0 to the prompt (lower = better)."""
        return masked_clip_distance(self.models.clip, state.pred_x0_guided, self.text_embed, state.mask,
                                    normalize=not self.cfg.reference_ranking)

    def step(self, index, i, t, x, model_kwargs, seed, blend=True, mask=None) -> StepState:
        """One reverse step from ``x`` at spaced timestep ``i`` (see the module docstring)."""
        cfg, diffusion = self.cfg, self.diffusion
        mask = self.mask if mask is None else mask
        x = x.detach()
        terms: dict = {}
        per_sample = None
        guidance = cfg.guidance_at(index) if self.loss is not None else "none"  # fast modes: EditConfig
        if guidance == "compute":
            with torch.enable_grad():
                x_in = x.requires_grad_()
                if cfg.guidance_gradient == "mpgd":  # fast mode: no backward through the UNet
                    out = self._jacobian_free_out(x_in, t, i, model_kwargs)
                else:
                    out = diffusion.p_mean_variance(self.models.runner, x_in, t, clip_denoised=False,
                                                    model_kwargs=model_kwargs)
                fac = float(diffusion.sqrt_one_minus_alphas_cumprod[i])
                total, terms = self.loss(x_in, out["pred_xstart"], fac, seed=seed, mask=mask,
                                         aug_num=cfg.views_at(index))
                grad = -torch.autograd.grad(total, x_in)[0]
                per_sample = self.loss.per_sample_clip if "clip" in terms else None
            out = {k: v.detach() for k, v in out.items()}
            x = x.detach()
            self.last_grad = grad
        else:
            with torch.no_grad():
                out = diffusion.p_mean_variance(self.models.runner, x, t, clip_denoised=False,
                                                model_kwargs=model_kwargs)
            reuse = guidance == "reuse" and self.last_grad is not None  # guidance_every: the cached gradient
            grad = self.last_grad if reuse else torch.zeros_like(x)
        with torch.no_grad():
            if cfg.ddim:
                fg, pred_guided = self._ddim_update(out, x, t, i, grad, model_kwargs)
            else:
                mean = diffusion.condition_mean(_const(grad), out, x, t, model_kwargs=model_kwargs)
                noise = self._randn(*x.shape)
                nonzero = 0.0 if i == 0 else 1.0
                fg = mean + nonzero * torch.exp(0.5 * out["log_variance"]) * noise
                pred_guided = out["pred_xstart"]
            t_bg = torch.tensor(i, device=x.device)
            bg = diffusion.q_sample(self.init_image, t_bg, noise=self._randn(*self.init_image.shape))
            bg = bg.expand(x.shape[0], -1, -1, -1)
            x_prev = fg * mask + bg * (1 - mask) if blend else fg
        return StepState(
            index=index, t=i, x_t=x, pred_x0=out["pred_xstart"], pred_x0_guided=pred_guided,
            grad=grad, fg=fg, bg=bg, x_prev=x_prev, mask=mask,
            alpha_bar=float(diffusion.alphas_cumprod[i]), num_steps=len(self.timesteps),
            iteration=self.iteration, y=model_kwargs.get("y"), loss_tensors=terms,
            clip_per_sample=per_sample, timestep=int(diffusion.timestep_map[i]),
            init_image=self.init_image, cfg=cfg, preset=getattr(self.models, "preset", None),
        )

    def _jacobian_free_out(self, x_in, t, i, model_kwargs) -> dict:
        """``p_mean_variance`` under ``no_grad`` (no UNet graph), with ``pred_xstart`` re-attached to
        ``x_in`` as if ε̂ were constant: x̂0 = x_t/√ᾱ_t − √(1/ᾱ_t − 1)·ε̂ gives ∂x̂0/∂x_t = 1/√ᾱ_t. The
        values are the UNet's exactly; only the gradient path differs (``guidance_gradient="mpgd"``)."""
        with torch.no_grad():
            out = self.diffusion.p_mean_variance(self.models.runner, x_in.detach(), t, clip_denoised=False,
                                                 model_kwargs=model_kwargs)
        scale = float(self.diffusion.sqrt_recip_alphas_cumprod[i])
        out["pred_xstart"] = out["pred_xstart"] + scale * (x_in - x_in.detach())
        return out

    def _ddim_update(self, out, x, t, i, grad, model_kwargs):
        """DDIM (eq. 12 of Song et al.) with the score conditioned by ``grad`` (condition_score)."""
        from guided_diffusion.gaussian_diffusion import _extract_into_tensor

        diffusion = self.diffusion
        if self.loss is not None:
            out = diffusion.condition_score(_const(grad), out, x, t, model_kwargs=model_kwargs)
        eps = diffusion._predict_eps_from_xstart(x, t, out["pred_xstart"])
        alpha_bar = _extract_into_tensor(diffusion.alphas_cumprod, t, x.shape)
        alpha_bar_prev = _extract_into_tensor(diffusion.alphas_cumprod_prev, t, x.shape)
        eta = self.cfg.ddim_eta
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        sample = out["pred_xstart"] * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps
        if eta > 0 and i != 0:  # i is a Python int: no device sync
            sample = sample + sigma * self._randn(*x.shape)
        return sample, out["pred_xstart"]

    def final_images(self, state: StepState) -> torch.Tensor:
        """The result of a finished trajectory: the last x̂0, with the input pasted outside the mask
        when ``enforce_background`` (and not in local_clip_guided_diffusion mode), as the reference."""
        pred = state.pred_x0_guided
        if self.cfg.pastes_background:
            pred = paste_background(pred, self.init_image, state.mask)
        return pred

    def run(self, hooks: Iterable[Hook] = ()) -> torch.Tensor:
        """Run every step; return :meth:`final_images` of the last one, (B, 3, H, W) in [-1, 1].
        ``self.last_state`` keeps the final StepState (its ``sample_ids`` say which samples survived
        pruning)."""
        state = None
        for state in self.steps(hooks):
            pass
        self.last_state = state
        return self.final_images(state)
