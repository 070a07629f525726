"""``blendlab edit | demo | download | sweep``: argparse over the same :class:`EditConfig`.

``blendlab edit`` takes the reference ``main.py`` flags (same names, same defaults) and writes what
the reference writes into ``<output_path>``:

- ``<stem>_i_<iteration>_b_<batch index>.png`` per sample: source | mask | edited, titled with the
  prompt and the sample's CLIP distance (:func:`blendlab.viz.comparison_figure`; no mask panel
  without ``--mask``); ``--no_figures`` skips them;
- ``ranked/<distance>_<stem>_i_<iteration>_b_<batch index>.png``: every result, named by its CLIP
  distance (``0.7731`` -> ``07731``);
- with ``--export_assets``, ``assets/``: the input as ``<output_file>``, the mask as
  ``<stem>_mask.png`` (with ``--mask``) and every result as ``<stem>_i_<iteration>_b_<batch index>.png``;
- with ``--vid``, an animated GIF per sample (the reference: AVI).

blendlab adds one file: ``ranked.json``, the prompt, the preset and the ranked files, best first.

The model: ``--model_output_size`` picks a real preset (256 -> "256-uncond", 512 -> "512-cond");
``--preset`` names one directly, and a ``--model_output_size`` that contradicts a real preset is an
error. The tiny presets are mechanics-only stand-ins at 32 px, not constrained by the size (``tiny``
for 256-uncond, ``tiny-cond`` for 512-cond). Every input is checked before any checkpoint is located.

May import: errors, download, presets, models, images, masks, video, toyworld.judge, examples,
sampler, hooks, runner, notebook, viz, sweep.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from .sweep import command as sweep_command

__all__ = ["main", "build_parser", "config_from_args"]

PRESET_FOR_SIZE = {256: "256-uncond", 512: "512-cond"}


VIDEO_FORMATS = ("apng", "gif", "webp", "mp4")


def _defaults():
    from .sampler import EditConfig

    return {f.name: f.default for f in dataclasses.fields(EditConfig)}


def _add_edit_flags(p: argparse.ArgumentParser, prompt_required: bool) -> None:
    d = _defaults()
    io = p.add_argument_group("inputs")
    io.add_argument("-p", "--prompt", type=str, required=prompt_required, default=d["prompt"],
                    help="the text the masked region should match")
    io.add_argument("-i", "--init_image", type=str, required=prompt_required, default=None,
                    help="path of the input image")
    io.add_argument("--mask", type=str, default=None,
                    help="path of the mask (white = edit); default: the whole image")
    diff = p.add_argument_group("diffusion")
    diff.add_argument("--skip_timesteps", type=int, default=d["skip_timesteps"],
                      help="respaced steps skipped at the start (the input is noised to the first kept one)")
    diff.add_argument("--local_clip_guided_diffusion", action="store_true",
                      help="baseline: no blending with the noised input")
    diff.add_argument("--ddim", action="store_true", help="DDIM instead of DDPM")
    diff.add_argument("--timestep_respacing", type=str, default=d["timestep_respacing"],
                      help="how many respaced steps (guided_diffusion respace.py syntax)")
    diff.add_argument("--model_output_size", type=int, default=None, choices=[256, 512],
                      help="256: unconditional model (paper); 512: class-conditional model "
                           f"(default: the --preset's size, else {d['model_output_size']})")
    loss = p.add_argument_group("guidance")
    loss.add_argument("--aug_num", type=int, default=d["aug_num"], help="CLIP views per sample (1 unaugmented)")
    loss.add_argument("--clip_guidance_lambda", type=float, default=d["clip_guidance_lambda"])
    loss.add_argument("--range_lambda", type=float, default=d["range_lambda"])
    loss.add_argument("--lpips_sim_lambda", type=float, default=d["lpips_sim_lambda"])
    loss.add_argument("--l2_sim_lambda", type=float, default=d["l2_sim_lambda"])
    loss.add_argument("--background_preservation_loss", action="store_true",
                      help="baseline: L2/LPIPS loss to the input outside the mask")
    m = p.add_argument_group("mask")
    m.add_argument("--invert_mask", action="store_true", help="edit outside the mask (background replacement)")
    m.add_argument("--no_enforce_background", action="store_false", dest="enforce_background",
                   help="do not paste the input outside the mask at the end")
    misc = p.add_argument_group("misc")
    misc.add_argument("--seed", type=int, default=d["seed"])
    misc.add_argument("--gpu_id", type=int, default=d["gpu_id"])
    misc.add_argument("--output_path", type=str, default=d["output_path"])
    misc.add_argument("-o", "--output_file", type=str, default=d["output_file"],
                      help="file name stem of the outputs, must end in .png")
    misc.add_argument("--iterations_num", type=int, default=d["iterations_num"])
    misc.add_argument("--batch_size", type=int, default=d["batch_size"])
    misc.add_argument("--vid", action="store_true", dest="save_video",
                      help="save a video of x̂0 over the steps for every sample (every step; the last "
                           "frame is the saved result); the format is --vid_format")
    misc.add_argument("--export_assets", action="store_true",
                      help="also save the input, the mask and every unranked result in assets/")
    extra = p.add_argument_group("blendlab extras")
    extra.add_argument("--preset", type=str, default=None,
                       help="model preset (default from --model_output_size, which must agree with a "
                            "real preset; 'tiny' runs offline at 32 px whatever the size)")
    extra.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:1 (default: --gpu_id if CUDA)")
    extra.add_argument("--unet_path", type=str, default=None, help="use this UNet checkpoint file")
    extra.add_argument("--clip_path", type=str, default=None, help="use this CLIP checkpoint file")
    extra.add_argument("--vid_format", choices=VIDEO_FORMATS, default=VIDEO_FORMATS[0],
                       help="format of --vid: apng (lossless animated PNG), gif (at most 256 colours), "
                            "webp (lossless), mp4 (needs imageio[ffmpeg])")
    extra.add_argument("--no_progress", action="store_true", help="no progress bars")
    extra.add_argument("--no_figures", action="store_true",
                       help="do not write the per-sample source | mask | edited figures")
    extra.add_argument("--reference_ranking", action="store_true", default=d["reference_ranking"],
                       help="rank by the reference's distances (masked views fed to CLIP unnormalised)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blendlab", description="Blended Diffusion: text-driven editing of natural images")
    sub = parser.add_subparsers(dest="command", required=True)
    p_edit = sub.add_parser("edit", help="edit an image region with a text prompt (reference flags)")
    _add_edit_flags(p_edit, prompt_required=True)
    p_demo = sub.add_parser("demo", help="a complete offline edit on CPU in the toy world")
    p_demo.add_argument("--output_path", default="demo_output")
    p_demo.add_argument("--preset", default="toy",
                        help="'toy' (trained toy world, offline), 'tiny' (random weights) or a real preset")
    p_demo.add_argument("--prompt", default=None, help="default: the example's ('a red circle' in the toy world)")
    p_demo.add_argument("--no_progress", action="store_true")
    p_dl = sub.add_parser("download", help="fetch the weights of a preset into the cache")
    p_dl.add_argument("--preset", default="256-uncond", help="256-uncond or 512-cond")
    p_dl.add_argument("--clip_model", default="ViT-B/16")
    p_dl.add_argument("--cache_dir", default=None)
    sweep_command.add_sweep_parser(sub)
    return parser


def config_from_args(args: argparse.Namespace):
    from .sampler import EditConfig

    names = {f.name for f in dataclasses.fields(EditConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    _, values["model_output_size"] = _preset_and_size(args)
    return EditConfig(**values)


def _preset_and_size(args: argparse.Namespace) -> tuple[str, int]:
    """The model preset and ``model_output_size`` of an ``edit`` command line.

    Without ``--preset`` the size picks the preset; with a real preset the size is the preset's,
    and a ``--model_output_size`` that says otherwise is a usage error. Tiny presets are not
    constrained by the size (they always work at 32 px).
    """
    from .models import PRESETS
    from .sampler import EditConfig

    size = getattr(args, "model_output_size", None)
    preset = getattr(args, "preset", None)
    if preset is None:
        size = EditConfig.model_output_size if size is None else size
        return PRESET_FOR_SIZE.get(size), size  # another size: EditConfig explains
    spec = PRESETS.get(preset)
    if spec is None or spec["checkpoint"] is None:  # tiny, or unknown (load_models names the choices)
        return preset, EditConfig.model_output_size if size is None else size
    preset_size = int(spec["unet"]["image_size"])
    if size is None or size == preset_size or size not in PRESET_FOR_SIZE:
        return preset, preset_size if size is None else size  # another size: EditConfig explains
    raise _usage(
        f"--preset {preset} works at {preset_size}x{preset_size} but --model_output_size is {size}; "
        f"drop --model_output_size (the preset sets it) or use --preset {PRESET_FOR_SIZE[size]}"
    )


def _device(args):
    import torch

    from .errors import InputError

    if not args.device:
        return torch.device(f"cuda:{args.gpu_id}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise InputError(f"--device {args.device!r} is not a device; use cpu, cuda or cuda:1") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    return device


def _checked_inputs(args):
    """Everything an ``edit`` command line can get wrong, checked before any model is located or
    downloaded: the flags, the preset, the device, the checkpoint files given, the image and the mask
    (read at the preset's size) and the output folder. Returns ``(cfg, preset, device, image, mask)``."""
    import warnings

    from .images import load_image
    from .masks import edit_mask, full_mask, load_mask
    from .presets import PRESETS, check_preset

    cfg = config_from_args(args)
    if not cfg.output_file.endswith(".png"):
        raise _usage(f"--output_file must end in .png, got {cfg.output_file!r}")
    if cfg.save_video:
        from .video import check_format

        check_format("." + args.vid_format)  # e.g. mp4 without imageio
    preset, _ = _preset_and_size(args)
    check_preset(preset)
    device = _device(args)
    for flag in ("unet_path", "clip_path"):
        path = getattr(args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag} {path}: no such file")
    size = int(PRESETS[preset]["unet"]["image_size"])
    image = load_image(cfg.init_image, size=size)
    mask = load_mask(cfg.mask, size=size) if cfg.mask else full_mask(size)
    with warnings.catch_warnings():  # a mask over the whole image is allowed; the edit itself says so
        warnings.simplefilter("ignore")
        edit_mask(mask, image, invert=cfg.invert_mask)  # nothing to edit (e.g. --invert_mask, no --mask)
    _check_output_folder(Path(cfg.output_path))
    return cfg, preset, device, image, mask


def _check_output_folder(out: Path) -> None:
    """``--output_path``: a folder that exists or can be made, and that this user may write to."""
    from .errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"--output_path {out} is a file; name a folder (it is made if missing)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--output_path {out} cannot be made: {existing} is a file; name another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"--output_path {out} cannot be written: {existing} is not writable for you; "
                         "name another folder")


def run_edit(args) -> Path:
    from .hooks import IterationVideos
    from .images import atomic_write, save_image
    from .masks import mask_to_pil
    from .models import load_models
    from .runner import edit

    cfg, preset, device, image, mask = _checked_inputs(args)
    models = load_models(preset, device=device, unet_path=args.unet_path, clip_path=args.clip_path,
                         progress=not args.no_progress)
    out = Path(cfg.output_path)
    videos = IterationVideos(cfg, models.image_size, out, "." + args.vid_format) if cfg.save_video else None
    try:
        result = edit(models, image, mask, cfg, [videos] if videos else [], progress=not args.no_progress)
    except BaseException:
        if videos:  # a failed run leaves nothing behind, not even the videos of batches that finished
            videos.discard()
        raise
    paths = result.save_ranked(out / "ranked")
    if not args.no_figures:
        from .viz import save_comparison_figures

        save_comparison_figures(result, out, show_mask=cfg.mask is not None)
    if cfg.export_assets:
        assets = out / "assets"
        save_image(image, assets / cfg.output_file)
        if cfg.mask is not None:  # as the reference: no mask asset without --mask
            save_image(mask_to_pil(result.mask), assets / cfg.output_file.replace(".png", "_mask.png"))
        for i in range(result.images.shape[0]):
            save_image(result.images[i], assets / result.sample_name(i))
    summary = {"prompt": cfg.prompt, "preset": models.preset, "reference_ranking": cfg.reference_ranking,
               "ranked": [{"file": str(p), "clip_distance": float(d)}
                          for p, (_, d) in zip(paths, result.ranked)]}
    atomic_write(out / "ranked.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    print(f"{len(paths)} results in {out / 'ranked'} (best first: {paths[0].name})")
    return out


def run_demo(args) -> Path:
    """A complete edit offline: the toy world by default (a toy scene, a mask over its empty right
    half, "a red circle"), judged by the toy world's independent judge; with a real preset the
    Grace Hopper photo (ships with matplotlib)."""
    from .examples import example
    from .hooks import Recorder
    from .images import save_image
    from .masks import mask_to_pil
    from .models import load_models
    from .notebook import settings_for
    from .runner import edit
    from .sampler import EditConfig
    from .viz import save_step_strip

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

    from .images import atomic_write
    from .toyworld.judge import judge

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


def run_download(args) -> list[Path]:
    from .download import ensure_file
    from .models import PRESETS, clip_remote_file

    if args.preset not in PRESETS or PRESETS[args.preset]["checkpoint"] is None:
        real = [k for k, v in PRESETS.items() if v["checkpoint"] is not None]
        raise _usage(f"--preset must be one of {', '.join(real)} (tiny needs no download)")
    cache = Path(args.cache_dir) if args.cache_dir else None
    paths = [ensure_file(PRESETS[args.preset]["checkpoint"], cache_dir=cache),
             ensure_file(clip_remote_file(args.clip_model), cache_dir=cache)]
    for p in paths:
        print(p)
    return paths


class _UsageError(ValueError):
    """A command line that contradicts itself: argparse reports it (exit status 2)."""


def _usage(msg: str) -> _UsageError:
    return _UsageError(msg)


def main(argv: list[str] | None = None) -> int:
    from .errors import BlendlabError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "edit":
            run_edit(args)
        elif args.command == "demo":
            run_demo(args)
        elif args.command == "sweep":
            return sweep_command.run_sweep_command(args)
        else:
            run_download(args)
    except _UsageError as exc:
        parser.error(str(exc))
    except (BlendlabError, FileNotFoundError, ValueError) as exc:
        print(f"blendlab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
