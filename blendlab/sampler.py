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
kornia's augmentations are seeded from it. And every step is checked: the first NaN or infinity in
x̂0, a loss term or x_{t−1} stops the run with a :class:`blendlab.errors.NonFiniteError` that names
the step, t, the term and what to try.

May import: errors, inputs, nonfinite, updates, masks, models, embeddings, guidance, plan, config, vocabulary.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Iterable, Iterator

import torch

from .embeddings import encode_text, masked_clip_distance
from .errors import InputError
from .guidance import GuidanceLoss
from .inputs import EditInputs, prepare
from .masks import paste_background
from .nonfinite import non_finite_error
from .config import EditConfig  # noqa: F401  (re-exported: blendlab.sampler.EditConfig)
from .models import create_diffusion  # noqa: F401  (re-exported: blendlab.sampler.create_diffusion)
from .plan import StepPlan, plan_steps
from .updates import ddim_step, ddpm_step, eps_from_x0, schedule_at
from .vocabulary import keeps_old_t

__all__ = ["EditConfig", "StepState", "BlendedSampler", "Hook", "create_diffusion"]


@keeps_old_t
@dataclasses.dataclass
class StepState:
    """What one reverse step saw and produced. Image tensors are (B, 3, H, W) in model space.

    Fields:
        index: the step k = 0 … N−1 of the loop (``num_steps`` is N); labels say "step k/N".
        respaced_index: internal: the index into the respaced ``sampler.diffusion`` that
            guided-diffusion's functions take as their ``t`` (counts down to 0); no label shows it.
            (Called ``t`` before 0.x: ``state.t`` still reads it, with a DeprecationWarning.)
        timestep: the t of the 1000-step schedule that step stands for (labels: "step 3/10 · t=473",
            :func:`blendlab.vocabulary.step_label`).
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
    respaced_index: int
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

def _checked_plan(plan: StepPlan, diffusion, cfg: EditConfig) -> StepPlan:
    """A plan handed in must be ``cfg``'s on ``diffusion``: the same respacing and skipped steps."""
    if (plan.respacing, plan.total, plan.skipped) != (cfg.timestep_respacing, int(diffusion.num_timesteps),
                                                      cfg.skip_timesteps):
        raise InputError(f"the step plan is for timestep_respacing={plan.respacing!r} skipping {plan.skipped} of "
                         f"{plan.total}, the config asks for {cfg.timestep_respacing!r} skipping "
                         f"{cfg.skip_timesteps}: build it with blendlab.plan.plan_steps(diffusion, cfg)")
    return plan


def _old_step_call(index, i, old, model_kwargs, seed, blend, mask):
    """The arguments of the old ``step(index, i, t, x, model_kwargs, seed, blend=True, mask=None)``."""
    warnings.warn("BlendedSampler.step(index, i, t, x, ...) is deprecated: call step(k, x, model_kwargs=..., "
                  "seed=...); the plan gives the step's times", DeprecationWarning, stacklevel=3)
    rest = list(old[1:])  # old = (t, x, model_kwargs, seed, blend, mask)[: given]
    if not rest:
        raise TypeError("step(index, i, t, x, ...): x is missing")
    x, rest = rest[0], rest[1:]
    names = ["model_kwargs", "seed", "blend", "mask"]
    given = dict(model_kwargs=model_kwargs, seed=seed, blend=blend, mask=mask)
    given.update(zip(names, rest))
    return index, x, given["model_kwargs"], given["seed"], given["blend"], given["mask"]


def _const(fn_value: torch.Tensor):
    """A guided_diffusion cond_fn that returns an already computed gradient."""
    return lambda x, t, **kwargs: fn_value


class BlendedSampler:
    """Blended Diffusion for one batch: iterate :meth:`steps` or call :meth:`run`.

    Args:
        models: from :func:`blendlab.load_models`.
        image: (1, 3, H, W) in [-1, 1] at ``models.image_size`` (or what :func:`blendlab.inputs.prepare`
            takes: a path, PIL image, array).
        mask: (1 or B, 1, H, W) in {0, 1}, 1 = edit. ``cfg.invert_mask`` is applied here.
        cfg: the :class:`EditConfig`. The three are checked by :func:`blendlab.inputs.prepare` (its
            warnings given as Python warnings); :meth:`from_inputs` takes inputs already checked.
        generator: a ``torch.Generator`` on ``models.device``; default: seeded from ``cfg.seed``.
        diffusion: guided-diffusion's ``SpacedDiffusion`` for ``cfg.timestep_respacing`` (default: made
            here; :func:`blendlab.edit` makes it once per edit and passes it to every batch).
        plan: the :class:`~blendlab.plan.StepPlan` of ``cfg`` (default: :func:`~blendlab.plan.plan_steps`
            here); the loop reads every step's t, respaced index, guidance and views from it.

    ``sampler.init_image`` and ``sampler.mask`` are the tensors actually used; ``sampler.diffusion``
    is the guided_diffusion ``SpacedDiffusion``; ``sampler.loss`` is the :class:`GuidanceLoss` (None
    when unguided) and is read at every step, so setting it to None inside a loop over
    :meth:`steps` stops the guidance from the next step on, and any callable with its call
    signature, ``loss(x_t, pred_x0, fac, seed=, mask=, aug_num=) -> (total, terms)``, may take its
    place (a colour loss in lesson 3; :mod:`blendlab.step_check`).
    """

    def __init__(self, models, image, mask, cfg: EditConfig, generator: torch.Generator | None = None, *,
                 diffusion=None, plan: StepPlan | None = None):
        inputs = prepare(models, image, mask, cfg)  # the front door: checked here, trusted below
        inputs.warn(stacklevel=2)
        self._setup(models, inputs, generator, diffusion, plan, None, None)

    @classmethod
    def from_inputs(cls, models, inputs: EditInputs, generator: torch.Generator | None = None, *,
                    diffusion=None, plan: StepPlan | None = None, text_embed: torch.Tensor | None = None,
                    loss: GuidanceLoss | None = None) -> "BlendedSampler":
        """A sampler for inputs :func:`blendlab.inputs.prepare` checked, trusted as they are (their
        warnings are the caller's to give). What depends only on the edit may be handed in, built once
        for all its batches (:func:`blendlab.edit` does): ``diffusion``, ``plan``, ``text_embed``
        ((1, D) CLIP embedding of ``inputs.cfg.prompt``) and ``loss`` (the :class:`GuidanceLoss` of
        these inputs; only used when ``cfg.guided``). Missing ones are made here."""
        sampler = cls.__new__(cls)
        sampler._setup(models, inputs.check_for(models), generator, diffusion, plan, text_embed, loss)
        return sampler

    def _setup(self, models, inputs: EditInputs, generator, diffusion, plan, text_embed, loss) -> None:
        cfg = inputs.cfg
        self.models = models
        self.cfg = cfg
        device = models.device
        inputs = inputs.to(device)  # nothing to do when bl.edit moved them once for every batch
        self.inputs = inputs
        self.init_image, self.mask = inputs.image, inputs.edit_mask
        self.diffusion = create_diffusion(models, cfg.timestep_respacing) if diffusion is None else diffusion
        if generator is None:
            generator = torch.Generator(device=device)
            generator.manual_seed(cfg.seed if cfg.seed is not None else torch.seed())
        self.generator = generator
        self.iteration = 0
        self.last_grad = None  # the last computed guidance gradient (reused by guidance_every)
        if text_embed is None and (cfg.guided or cfg.prune_at):
            text_embed = encode_text(models.clip, cfg.prompt)
        self.text_embed = text_embed
        if cfg.guided and loss is None:
            loss = GuidanceLoss(models, cfg, self.init_image, self.mask, self.text_embed)
        self.loss = loss if cfg.guided else None
        self.plan = plan_steps(self.diffusion, cfg) if plan is None else _checked_plan(plan, self.diffusion, cfg)

    # -- randomness -------------------------------------------------------------------------
    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.models.device)

    @property
    def timesteps(self) -> list[int]:
        """Indices into ``self.diffusion`` visited by the reverse process, high to low (``self.plan``)."""
        return self.plan.indices

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
        over ``steps()`` may also assign ``state.x_prev``. Each step is checked (:meth:`check_finite`)
        before the hooks see it.
        """
        cfg, models = self.cfg, self.models
        hooks = list(hooks)
        x = self.start() if x_start is None else x_start
        ids = torch.arange(x.shape[0], device=x.device)
        mask = self.mask
        seeds = torch.randint(0, 2**62, (len(self.timesteps),), generator=self.generator,
                              device=self.generator.device).tolist()
        blend = not cfg.local_clip_guided_diffusion
        prune_index = self.plan.prune_index
        for k in range(len(self.plan)):
            b = x.shape[0]
            model_kwargs = {}
            if models.num_classes is not None:  # the reference draws a random class every step
                model_kwargs["y"] = torch.randint(0, models.num_classes, (b,), generator=self.generator, device=x.device)
            state = self.step(k, x, model_kwargs=model_kwargs, seed=seeds[k], blend=blend, mask=mask)
            state.sample_ids = ids
            self.check_finite(state)
            if k == prune_index and cfg.keep < b:
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

    def check_finite(self, state: StepState) -> None:
        """Raise :class:`NonFiniteError` when x̂0, a loss term or x_{t−1} of ``state`` holds NaN or
        infinity (x_{t−1} carries the gradient, the guided x̂0 and the noise on). Costs one flag
        reduced on the device and one read of it per step (``benchmarks/bench_nonfinite.py``); only a
        failing step is looked at term by term. Reads, never changes, the state."""
        checked = [state.pred_x0, state.x_prev]
        if state.loss_tensors:
            checked.append(torch.stack(list(state.loss_tensors.values())))
        if not bool(torch.stack([torch.isfinite(v).all() for v in checked]).all()):
            raise non_finite_error(state, self.diffusion.num_timesteps, guided=self.loss is not None)

    def prune_scores(self, state: StepState) -> torch.Tensor:
        """(B,) masked, unaugmented CLIP distance of this step's x̂0 to the prompt (lower = better)."""
        return masked_clip_distance(self.models.clip, state.pred_x0_guided, self.text_embed, state.mask,
                                    normalize=not self.cfg.reference_ranking)

    def step(self, k: int, x: torch.Tensor, *old, model_kwargs: dict | None = None, seed: int | None = None,
             blend: bool = True, mask: torch.Tensor | None = None) -> StepState:
        """Step ``k`` of the plan (0 … N−1) from ``x`` (B, 3, H, W): one reverse step, blended.

        The step's times all come from ``self.plan[k]`` (the module docstring and
        :mod:`blendlab.vocabulary`): ``.t`` of the 1000-step schedule for labels, ``.respaced_index``
        for guided-diffusion's functions. ``model_kwargs`` (e.g. the class ``y``), ``seed`` (the
        augmentations'; None: unseeded) and ``mask`` (default the sampler's) are the loop's. The old call
        ``step(index, i, t, x, model_kwargs, seed, blend, mask)`` still works, with a DeprecationWarning.
        """
        if old or not isinstance(x, torch.Tensor):
            k, x, model_kwargs, seed, blend, mask = _old_step_call(k, x, old, model_kwargs, seed, blend, mask)
        cfg, diffusion = self.cfg, self.diffusion
        mask = self.mask if mask is None else mask
        model_kwargs = {} if model_kwargs is None else model_kwargs
        x = x.detach()
        terms: dict = {}
        per_sample = None
        planned = self.plan[k]
        r = planned.respaced_index  # guided-diffusion's "t", a Python int (no device sync)
        r_batch = torch.full((x.shape[0],), r, device=x.device, dtype=torch.long)  # the same, per sample
        guidance = planned.guidance if self.loss is not None else "none"  # fast modes: the plan
        if guidance == "compute":
            with torch.enable_grad():
                x_in = x.requires_grad_()
                if cfg.guidance_gradient == "mpgd":  # fast mode: no backward through the UNet
                    out = self._jacobian_free_out(x_in, r_batch, r, model_kwargs)
                else:
                    out = diffusion.p_mean_variance(self.models.denoiser, x_in, r_batch, clip_denoised=False,
                                                    model_kwargs=model_kwargs)
                fac = float(diffusion.sqrt_one_minus_alphas_cumprod[r])
                total, terms = self.loss(x_in, out["pred_xstart"], fac, seed=seed, mask=mask,
                                         aug_num=planned.views)
                grad = -torch.autograd.grad(total, x_in)[0]
                per_sample = self.loss.per_sample_clip if "clip" in terms else None
            out = {name: v.detach() for name, v in out.items()}
            x = x.detach()
            self.last_grad = grad
        else:
            with torch.no_grad():
                out = diffusion.p_mean_variance(self.models.denoiser, x, r_batch, clip_denoised=False,
                                                model_kwargs=model_kwargs)
            reuse = guidance == "reuse" and self.last_grad is not None  # guidance_every: the cached gradient
            grad = self.last_grad if reuse else torch.zeros_like(x)
        with torch.no_grad():
            if cfg.ddim:
                fg, pred_guided = self._ddim_update(out, x, r_batch, r, grad, model_kwargs)
            else:
                mean = diffusion.condition_mean(_const(grad), out, x, r_batch, model_kwargs=model_kwargs)
                fg = ddpm_step(mean, out["log_variance"], self._randn(*x.shape), last=r == 0)
                pred_guided = out["pred_xstart"]
            bg = diffusion.q_sample(self.init_image, torch.tensor(r, device=x.device), noise=self._randn(*self.init_image.shape))
            bg = bg.expand(x.shape[0], -1, -1, -1)
            x_prev = fg * mask + bg * (1 - mask) if blend else fg
        return StepState(
            index=k, respaced_index=r, x_t=x, pred_x0=out["pred_xstart"], pred_x0_guided=pred_guided,
            grad=grad, fg=fg, bg=bg, x_prev=x_prev, mask=mask,
            alpha_bar=planned.alpha_bar, num_steps=len(self.plan),
            iteration=self.iteration, y=model_kwargs.get("y"), loss_tensors=terms,
            clip_per_sample=per_sample, timestep=planned.t,
            init_image=self.init_image, cfg=cfg, preset=getattr(self.models, "preset", None),
        )

    def _jacobian_free_out(self, x_in, r_batch, r, model_kwargs) -> dict:
        """``p_mean_variance`` under ``no_grad`` (no UNet graph), with ``pred_xstart`` re-attached to
        ``x_in`` as if ε̂ were constant: x̂0 = x_t/√ᾱ_t − √(1/ᾱ_t − 1)·ε̂ gives ∂x̂0/∂x_t = 1/√ᾱ_t. The
        values are the UNet's exactly; only the gradient path differs (``guidance_gradient="mpgd"``)."""
        with torch.no_grad():
            out = self.diffusion.p_mean_variance(self.models.denoiser, x_in.detach(), r_batch, clip_denoised=False,
                                                 model_kwargs=model_kwargs)
        scale = float(self.diffusion.sqrt_recip_alphas_cumprod[r])
        out["pred_xstart"] = out["pred_xstart"] + scale * (x_in - x_in.detach())
        return out

    def _ddim_update(self, out, x, r_batch, r, grad, model_kwargs):
        """DDIM (eq. 12 of Song et al.) with the score conditioned by ``grad`` (condition_score)."""
        diffusion = self.diffusion
        if self.loss is not None:
            out = diffusion.condition_score(_const(grad), out, x, r_batch, model_kwargs=model_kwargs)
        eps = eps_from_x0(diffusion, x, r_batch, out["pred_xstart"])
        alpha_bar = schedule_at(diffusion.alphas_cumprod, r_batch, x.shape)
        alpha_bar_prev = schedule_at(diffusion.alphas_cumprod_prev, r_batch, x.shape)
        eta = self.cfg.ddim_eta
        noise = self._randn(*x.shape) if eta > 0 and r != 0 else None  # r is a Python int: no device sync
        return ddim_step(out["pred_xstart"], eps, alpha_bar, alpha_bar_prev, eta, noise), out["pred_xstart"]

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
