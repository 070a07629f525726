"""What a reverse step that produced NaN or infinity says: :func:`non_finite_error` looks at the
step's tensors in the order the step computes them, names the first that went non-finite, where
("step 3/10 · t=473", the sample batch) and what to try, and returns the
:class:`blendlab.errors.NonFiniteError` the sampler raises.

It reads a :class:`blendlab.sampler.StepState` (any object with its fields) and never changes it.

May import: errors.
"""

from __future__ import annotations

import torch

from .errors import NonFiniteError

__all__ = ["non_finite_error", "TERMS"]

#: What ``NonFiniteError.term`` names, in the order a step computes them, and how messages say it.
TERMS = {"pred_x0": "x̂0", "clip": "the CLIP loss", "typography": "the anti-typography loss",
         "range": "the range loss", "lpips": "the LPIPS loss", "l2": "the L2 background loss",
         "grad": "the guidance gradient", "pred_x0_guided": "the guided x̂0", "x_prev": "x_{t−1}"}
#: The weight of each loss term in EditConfig.
_LAMBDAS = {"clip": "clip_guidance_lambda", "range": "range_lambda", "typography": "anti_typography_lambda",
            "lpips": "lpips_sim_lambda", "l2": "l2_sim_lambda"}


def non_finite_error(state, total_steps: int, guided: bool = True) -> NonFiniteError:
    """The :class:`NonFiniteError` for a step with NaN or infinity somewhere: which tensor went first
    (in the order the step computes them), how, and what to try. ``total_steps``: respaced steps
    before skipping (the "of 100" in "skips 25 of 100")."""
    cfg = state.cfg
    tensors = {"pred_x0": state.pred_x0, **state.loss_tensors, "grad": state.grad,
               "pred_x0_guided": state.pred_x0_guided, "x_prev": state.x_prev}
    term = next((k for k, v in tensors.items() if not bool(torch.isfinite(v).all())), "x_prev")
    bad = tensors[term]
    kind = "NaN" if bool(torch.isnan(bad).any()) else "infinite"
    if bad.numel() > 1:
        kind += f" in {int((~torch.isfinite(bad)).sum())} of {bad.numel()} values"
    where = f"step {state.index}/{state.num_steps} · t={state.timestep}"
    if cfg is not None and cfg.iterations_num > 1:
        where += f" (sample batch {state.iteration + 1} of {cfg.iterations_num})"
    finite = state.pred_x0[torch.isfinite(state.pred_x0)]
    size = float(finite.abs().max()) if finite.numel() else 0.0
    grown = f"; x̂0 had reached ±{size:.2g} (an image lies in [-1, 1])" if size > 10 else ""
    tips = []
    if cfg is not None and guided:
        tips.append(f"more skipped steps (skip_timesteps is {cfg.skip_timesteps} of {total_steps}; the "
                    "paper skips 25 of 100: the first steps, near t=1000, amplify the guidance most)")
        names = [_LAMBDAS[term]] if term in _LAMBDAS else []
        names += [n for n in _LAMBDAS.values() if n not in names and getattr(cfg, n, 0)
                  and (n not in ("lpips_sim_lambda", "l2_sim_lambda") or cfg.background_preservation_loss)]
        tips += [f"a smaller {n} (now {getattr(cfg, n):g})" for n in names]
    else:
        tips.append("more skipped steps (skip_timesteps); the UNet made it without guidance, so check "
                    "its weights (the preset, unet_path) and precision (load_models(..., precision='fp32'))")
    message = f"{where}: {TERMS.get(term, term)} became {kind}{grown}. The run stopped. Try: {', '.join(tips)}."
    return NonFiniteError(message, step=state.index, num_steps=state.num_steps, t=state.timestep, term=term,
                          iteration=state.iteration, state=state)
