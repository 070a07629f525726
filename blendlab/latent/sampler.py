"""Blended Latent Diffusion, one DDIM step at a time, yielding the StepStates blendlab's tools read.

    z0      = s · E(x)                         the source latents (posterior mean, s = VAE scaling)
    m_k     = the mask at latent size           (dilated early with mask_dilation_iterations)
    z_{t_0} = √ᾱ_{t_0} z0 + √(1−ᾱ_{t_0}) ε       start: the source noised to the first kept timestep
    for k = 0 … N−1, from timestep t = t_k to t' = t_{k+1} (DDIM's previous timestep; ᾱ_{t'} of the
    last step is the scheduler's final ᾱ):
        ε̂      = ε(z_t, ∅) + w (ε(z_t, c) − ε(z_t, ∅))      classifier-free guidance (w = guidance_scale)
        fg, ẑ0 = DDIM(ε̂, t, z_t)                           fg is at the level t'
        bg     = √ᾱ_b z0 + √(1−ᾱ_b) ε_k,  b = t' ("output") or b = t ("input")
        z_{t'} = fg ⊙ m_k + bg ⊙ (1 − m_k)
    result = D(z_final / s), then the background reconstruction ("none", "pixel", "poisson")

**The blend timing.** With ``background_level="input"`` (the default) the source latents are noised
to the step's *input* level t and blended into its output z_{t'}: a background one step noisier than
the latent around it, as the reference's Stable Diffusion scripts (``add_noise(source, t)`` after
``scheduler.step``) and the paper's Algorithm 1 do — and as Blended Diffusion (blendlab.sampler) blends
``q_sample(x0, t)`` into x_{t−1} (it never reaches the clean input, hence its final paste).
``background_level="output"`` noises them to the level of the latent they replace: bg at t' goes into
z_{t'}, so outside the mask every z_{t'} is exactly a sample of q(z_{t'} | z0); the reference's LDM
editor, which blends before each step at the step's input level, is that timing shifted by one step. In the last ``pixel_blending`` fraction of the steps the blend is
done in pixels instead: z_{t'} = noise_b(s · E(D(ẑ0 / s) ⊙ m + x ⊙ (1 − m))).

Every draw (the start, ε_k, DDIM's η noise) comes from the run's ``torch.Generator``. Each step is
checked: NaN or infinity in ẑ0 or z_{t'} stops the run with :class:`~blendlab.errors.NonFiniteError`.

May import: errors, images, masks, sampler, latent.config, latent.models, latent.reconstruct.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from ..errors import InputError, NonFiniteError
from ..images import check_image
from ..masks import dilate_mask, edit_mask
from ..sampler import Hook, StepState
from .config import LatentConfig
from .models import LatentModels
from .reconstruct import reconstruct

__all__ = ["LatentStepState", "BlendedLatentSampler", "latent_mask"]

#: StepState's image fields and the latent each is decoded from (on first read, then cached).
_DECODED = {"x_t": "latent_t", "pred_x0": "latent_pred_x0", "fg": "latent_fg", "bg": "latent_bg",
            "x_prev": "latent_prev"}


@dataclasses.dataclass(eq=False)
class LatentStepState(StepState):
    """One BLD step as a :class:`blendlab.sampler.StepState`, so hooks, the Recorder and the figures
    read it as a Blended Diffusion step.

    The latents (B, C, h, w), float32, in the VAE's scaled space: ``latent_t`` (z_t, the step's
    input), ``latent_pred_x0`` (ẑ0), ``latent_fg`` (the DDIM step's output, level t'), ``latent_bg``
    (the source noised to the background level), ``latent_prev`` (z_{t'} after blending: the next step
    starts from it, so a hook or a loop over ``steps()`` may replace it); ``latent_mask`` (1 or B, 1,
    h, w) in {0, 1}, the mask this step blended with; ``pixel_step`` (blended in pixels).

    The image fields ``x_t``, ``pred_x0``, ``pred_x0_guided`` (the same as ``pred_x0``: no gradient
    guidance), ``fg``, ``bg`` and ``x_prev`` are those latents decoded, (B, 3, H, W) in [-1, 1], on
    first read only (a VAE decode each) and cached; ``grad`` is zeros. ``mask`` is (1 or B, 1, H, W)
    in {0, 1}: the latent mask upsampled (nearest), or the pixel mask on a pixel step.
    ``respaced_index`` is the index into the scheduler's timesteps, ``timestep`` its t of the
    1000-step schedule, ``alpha_bar`` ᾱ_t of the input level. ``cfg`` is None (it is an EditConfig's place); ``settings`` is the
    :class:`LatentConfig` (what a Recorder keeps as ``recorder.cfg`` and a trajectory file stores).
    """

    latent_t: torch.Tensor | None = None
    latent_pred_x0: torch.Tensor | None = None
    latent_fg: torch.Tensor | None = None
    latent_bg: torch.Tensor | None = None
    latent_prev: torch.Tensor | None = None
    latent_mask: torch.Tensor | None = None
    pixel_step: bool = False
    settings: LatentConfig | None = None
    decoder: object = dataclasses.field(default=None, repr=False)


def _decoded(name: str, latent_name: str) -> property:
    def get(self):
        if name == "x_prev" and self.__dict__.get("_x_prev_set") is not None:
            return self.__dict__["_x_prev_set"]
        latent = getattr(self, latent_name)
        cached = self.__dict__.get("_decoded_" + name)
        if cached is None or cached[0] is not latent:
            cached = (latent, self.decoder(latent))
            self.__dict__["_decoded_" + name] = cached
        return cached[1]

    def set(self, value):
        if value is not None and name != "x_prev":
            raise InputError(f"{name} of a latent step is decoded from {latent_name}; change that instead")
        if value is not None:
            self.__dict__["_x_prev_set"] = value

    return property(get, set, doc=f"{latent_name} decoded: (B, 3, H, W) in [-1, 1], on first read.")


for _name, _latent in _DECODED.items():
    setattr(LatentStepState, _name, _decoded(_name, _latent))
LatentStepState.pred_x0_guided = property(lambda self: self.pred_x0, lambda self, value: None,
                                          doc="the same as pred_x0 (no gradient guidance in BLD)")
LatentStepState.grad = property(lambda self: torch.zeros_like(self.pred_x0), lambda self, value: None,
                                doc="zeros (B, 3, H, W): BLD has no guidance gradient")


def latent_mask(mask: torch.Tensor, size: tuple[int, int], dilation_iterations: int = 0) -> list[torch.Tensor]:
    """The masks of a run at latent ``size`` (h, w), most dilated first, the mask itself last.

    ``mask`` (1 or B, 1, H, W) in {0, 1} is downsampled by majority: a latent cell is edit when at
    least half of the pixels it covers are. With ``dilation_iterations`` n the list holds n + 1 masks,
    dilated by n, n − 1, …, 0 cells (a (2i + 1)-square). Raises :class:`InputError` when the mask
    vanishes at latent size."""
    small = (F.adaptive_avg_pool2d(mask.float(), size) >= 0.5).float()
    if not bool(small.flatten(1).amax(1).all()):
        cell = mask.shape[-2] // size[0]
        raise InputError(f"the mask covers less than half of every {cell}×{cell}-pixel latent cell, so nothing is "
                         f"left of it at the latent size {size[0]}×{size[1]}; paint it at least {cell} pixels wide")
    return [dilate_mask(small, i) for i in range(dilation_iterations, 0, -1)] + [small]


def _noised(z0: torch.Tensor, alpha_bar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """q(z | z0) at ᾱ: √ᾱ z0 + √(1 − ᾱ) ε."""
    return alpha_bar.sqrt() * z0 + (1 - alpha_bar).sqrt() * noise


class BlendedLatentSampler:
    """Blended Latent Diffusion for one batch: iterate :meth:`steps` or call :meth:`run`.

    Args:
        models: a :class:`~blendlab.latent.models.LatentModels`.
        image: (1, 3, H, W) in [-1, 1]; H and W multiples of ``models.vae_scale_factor``.
        mask: (1 or B, 1, H, W) in {0, 1}, 1 = edit, the image's size (``cfg.invert_mask`` applied here).
        cfg: the :class:`LatentConfig`. generator: default seeded from ``cfg.seed`` on ``models.device``.

    Attributes: ``source_latents`` (1, C, h, w) = s · E(image); ``masks`` (:func:`latent_mask`);
    ``mask`` the pixel mask; ``scheduler`` this run's DDIMScheduler; ``timesteps`` the kept timesteps;
    ``embeddings`` (2B or B, L, D), the negative prompt's first when guided. Nothing handed in is modified.
    """

    def __init__(self, models: LatentModels, image: torch.Tensor, mask: torch.Tensor, cfg: LatentConfig,
                 generator: torch.Generator | None = None):
        from diffusers import DDIMScheduler

        self.models, self.cfg = models, cfg
        check_image(image)
        f = models.vae_scale_factor
        if image.shape[-2] % f or image.shape[-1] % f:
            raise InputError(f"the image is {tuple(image.shape[-2:])}, but this VAE needs sides that are multiples "
                             f"of {f}; load it with load_image(..., size={models.image_size})")
        self.mask = edit_mask(mask, image, invert=cfg.invert_mask, batch_size=cfg.batch_size).to(models.device)
        self.init_image = image.to(models.device, torch.float32)
        self.source_latents = models.encode_image(self.init_image)
        self.masks = latent_mask(self.mask, tuple(self.source_latents.shape[-2:]), cfg.mask_dilation_iterations)
        if generator is None:
            generator = torch.Generator(device=models.device)
            generator.manual_seed(cfg.seed if cfg.seed is not None else torch.seed())
        self.generator = generator
        self.iteration = 0
        self.scheduler = DDIMScheduler.from_config(models.scheduler.config)
        self.scheduler.set_timesteps(cfg.num_steps, device=models.device)
        self.timesteps = [int(t) for t in self.scheduler.timesteps[cfg.steps_skipped:]]
        prompts = ([cfg.negative_prompt] if cfg.guided else []) + [cfg.prompt]
        self.embeddings = models.text.encode(prompts).to(models.device, models.dtype)

    def _randn(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.models.device)

    def alpha_bar(self, timestep: int) -> torch.Tensor:
        """ᾱ at ``timestep`` of the training schedule; the scheduler's final ᾱ below 0 (as DDIM)."""
        s = self.scheduler
        return s.alphas_cumprod[timestep] if timestep >= 0 else s.final_alpha_cumprod

    def previous_timestep(self, timestep: int) -> int:
        """t' of the step from ``timestep`` (DDIM's rule; negative after the last step)."""
        s = self.scheduler
        return timestep - s.config.num_train_timesteps // s.num_inference_steps

    def start(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, h, w) z at the first kept timestep: the source latents noised to it."""
        shape = (self.cfg.batch_size, *self.source_latents.shape[1:])
        noise = self._randn(shape) if noise is None else noise
        return _noised(self.source_latents, self.alpha_bar(self.timesteps[0]).to(noise.device), noise)

    def predict_noise(self, z: torch.Tensor, timestep: int) -> torch.Tensor:
        """ε̂ of (B, C, h, w) latents at ``timestep``, with classifier-free guidance when guided; float32."""
        cfg, models = self.cfg, self.models
        b = z.shape[0]
        emb = self.embeddings.repeat_interleave(b, 0)  # [negative × B, prompt × B] or [prompt × B]
        z_in = torch.cat([z, z]) if cfg.guided else z
        z_in = self.scheduler.scale_model_input(z_in, timestep).to(models.dtype)
        with torch.no_grad():
            eps = models.unet(z_in, timestep, encoder_hidden_states=emb).sample.float()
        if cfg.guided:
            eps_neg, eps_text = eps.chunk(2)
            eps = eps_neg + cfg.guidance_scale * (eps_text - eps_neg)
        return eps

    def step(self, index: int, z: torch.Tensor) -> LatentStepState:
        """One blended step from ``z`` (B, C, h, w) at ``self.timesteps[index]`` (the module docstring)."""
        cfg, models = self.cfg, self.models
        t = self.timesteps[index]
        t_prev = self.previous_timestep(t)
        eps = self.predict_noise(z, t)
        out = self.scheduler.step(eps, t, z, eta=cfg.ddim_eta, generator=self.generator)
        fg, pred = out.prev_sample.float(), out.pred_original_sample.float()
        level = self.alpha_bar(t_prev if cfg.background_level == "output" else t).to(z.device)
        noise = self._randn(z.shape)
        bg = _noised(self.source_latents, level, noise)
        pixel_step = index >= cfg.pixel_from
        m = self.masks[cfg.mask_index(index)]
        if pixel_step:
            images = reconstruct(models.decode_latents(pred), self.init_image, self.mask, "pixel")
            z_prev = _noised(models.encode_image(images), level, noise)
            mask = self.mask
        else:
            z_prev = fg * m + bg * (1 - m)
            mask = F.interpolate(m, size=self.mask.shape[-2:], mode="nearest")
        return LatentStepState(
            index=index, respaced_index=cfg.steps_skipped + index, x_t=None, pred_x0=None, pred_x0_guided=None, grad=None,
            fg=None, bg=None, x_prev=None, mask=mask, alpha_bar=float(self.alpha_bar(t)), num_steps=len(self.timesteps),
            iteration=self.iteration, timestep=t, init_image=self.init_image, cfg=None, preset=models.name,
            sample_ids=torch.arange(z.shape[0]), latent_t=z, latent_pred_x0=pred, latent_fg=fg, latent_bg=bg,
            latent_prev=z_prev, latent_mask=m, pixel_step=pixel_step, settings=cfg, decoder=models.decode_latents)

    def steps(self, hooks: Iterable[Hook] = (), x_start: torch.Tensor | None = None) -> Iterator[LatentStepState]:
        """Yield one :class:`LatentStepState` per step. After each step every hook is called with the
        state (a returned StepState replaces it); the loop continues from ``state.latent_prev`` as it
        is after the yield. ``x_start``: (B, C, h, w) latents to start from instead of :meth:`start`."""
        hooks = list(hooks)
        z = self.start() if x_start is None else self._checked_start(x_start)
        for index in range(len(self.timesteps)):
            state = self.step(index, z)
            self.check_finite(state)
            for hook in hooks:
                new = hook(state)
                if new is not None:
                    state = new
            yield state
            if state.__dict__.get("_x_prev_set") is not None:
                raise InputError("a latent run continues from state.latent_prev (latents); assigning the "
                                 "decoded x_prev cannot steer it: assign latent_prev instead")
            z = state.latent_prev

    def _checked_start(self, z: torch.Tensor) -> torch.Tensor:
        want = (self.cfg.batch_size, *self.source_latents.shape[1:])
        if not isinstance(z, torch.Tensor) or tuple(z.shape) != want:
            raise InputError(f"x_start must be latents of shape {want}, got "
                             f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
        if not bool(torch.isfinite(z).all()):
            raise InputError("x_start holds NaN or infinity; start from finite latents (or from sampler.start())")
        return z.to(self.models.device, torch.float32)

    def check_finite(self, state: LatentStepState) -> None:
        """Raise :class:`NonFiniteError` when ẑ0 or z_{t'} of ``state`` holds NaN or infinity."""
        for term, value in (("pred_x0", state.latent_pred_x0), ("x_prev", state.latent_prev)):
            if not bool(torch.isfinite(value).all()):
                what = "the latent x̂0" if term == "pred_x0" else "the latent x_{t-1}"
                fp16 = " float32 weights (load_latent_models(..., dtype=torch.float32))," if \
                    self.models.dtype == torch.float16 else ""
                raise NonFiniteError(
                    f"step {state.index}/{state.num_steps} · t={state.timestep}: {what} became NaN or infinite "
                    f"in {int((~torch.isfinite(value)).sum())} of {value.numel()} values. The run stopped. Try:{fp16} "
                    f"a smaller guidance_scale (now {self.cfg.guidance_scale:g}), or check the UNet's weights",
                    step=state.index, num_steps=state.num_steps, t=state.timestep, term=term,
                    iteration=state.iteration, state=state)

    def final_images(self, state: LatentStepState) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1]: the last z_{t'} decoded, with ``cfg.reconstruction`` applied."""
        decoded = self.models.decode_latents(state.latent_prev)
        return reconstruct(decoded, self.init_image, self.mask, self.cfg.reconstruction, models=self.models)

    def run(self, hooks: Iterable[Hook] = ()) -> torch.Tensor:
        """Run every step and return :meth:`final_images`; ``self.last_state`` keeps the last state."""
        state = None
        for state in self.steps(hooks):
            pass
        self.last_state = state
        return self.final_images(state)
