"""``blendlab demo``: a complete edit offline, judged in the toy world, with a figure a person can see.

May import: errors, models, images, masks, examples, hooks, runner, sampler, notebook, viz,
toyworld.judge.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_demo"]


def run_demo(args) -> Path:
    """A complete edit offline: the toy world by default (a toy scene, a mask over its empty right
    half, "a red circle"), judged by the toy world's independent judge; with a real preset the
    Grace Hopper photo (ships with matplotlib)."""
    from ..examples import example
    from ..hooks import Recorder
    from ..images import save_image
    from ..masks import mask_to_pil
    from ..models import load_models
    from ..notebook import settings_for
    from ..runner import edit
    from ..sampler import EditConfig
    from ..viz import save_step_strip

    models = load_models(args.preset, progress=not args.no_progress)
    ex = example("insert", models)
    settings = settings_for(models.preset)
    if models.is_toy:
        settings["iterations_num"] = 2  # 8 samples to rank
    cfg = EditConfig(prompt=args.prompt or ex.prompt, output_path=args.output_path, **settings)
    recorder = Recorder(every=max(1, cfg.num_steps // 8), fields=("x_t", "pred_x0", "x_prev"))
    result = edit(models, ex.image, ex.mask, cfg, [recorder], progress=not args.no_progress)
    out = Path(args.output_path)
    paths = result.save_ranked(out / "ranked")
    save_image(ex.image, out / "input.png")
    save_image(mask_to_pil(ex.mask), out / "mask.png")
    strip = save_step_strip(recorder, out / "steps.png", field="pred_x0")
    what = ("toy world, trained here" if models.is_toy
            else "random weights: mechanics only" if models.is_tiny else "real weights")
    print(f"demo ({models.preset}: {what}): prompt {cfg.prompt!r}, {len(paths)} ranked results in "
          f"{out / 'ranked'}, steps in {strip}")
    if models.is_toy:
        print(_judge_report(result, cfg.prompt, out))
    return out


def _judge_report(result, prompt: str, out: Path) -> str:
    """What the toy world's judge sees in the ranked results; also written to ``out/judge.json``."""
    import json

    from ..images import atomic_write
    from ..toyworld.judge import judge

    verdicts = judge(result.images, result.sample_masks)
    words = prompt.split()
    colour, shape = (words[1], words[2]) if len(words) == 3 and words[0] == "a" else (None, None)
    ranked = [verdicts[i] for i in result.order]
    rows = [dict(rank=r, colour=v.colour, shape=v.shape, coverage=round(v.coverage, 3),
                 distance=round(float(result.distances[i]), 4)) for r, (i, v) in enumerate(zip(result.order, ranked))]
    atomic_write(out / "judge.json", lambda tmp: Path(tmp).write_text(json.dumps(rows, indent=1) + "\n"))
    best = ranked[0]
    held = "nothing" if best.colour is None else f"a {best.colour} {best.shape or 'blob'}"
    lines = [f"judge (independent of CLIP): the best-ranked result holds {held}"]
    if colour:
        lines.append(f"  {sum(v.holds(colour) for v in ranked)}/{len(ranked)} samples hold {colour}, "
                     f"{sum(v.holds(colour, shape) for v in ranked)}/{len(ranked)} a {colour} {shape}")
    return "\n".join(lines)

