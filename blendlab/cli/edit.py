"""``blendlab edit``: check every input of a command line, then edit and write what the reference
writes (see :mod:`blendlab.cli`).

The thread count is set (:func:`blendlab.threads.apply_thread_policy`, ``--threads``) once the
preset is known and before any model loads; a ``--batch_size`` that will not fit in memory is
refused with the others (:mod:`blendlab.capacity`).

May import: errors, presets, models, images, masks, inputs, video, hooks, runner, viz, threads,
blendlab.cli.parser, blendlab.capacity.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..capacity import check_batch_fits
from .parser import config_from_args, edit_defaults, preset_and_size, refuse_other_methods_flags, usage

__all__ = ["run_edit", "checked_inputs", "checked_edit_inputs"]


def _device(args):
    import torch

    from ..errors import InputError

    if not args.device:
        return torch.device(f"cuda:{args.gpu_id}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise InputError(f"--device {args.device!r} is not a device; use cpu, cuda or cuda:1") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    return device


def checked_edit_inputs(args):
    """Everything an ``edit`` command line can get wrong, checked before any model is located or
    downloaded: the flags, the preset, the device, the checkpoint files given, the image, the mask and
    the prompt (through the front door, :func:`blendlab.inputs.prepare`, at the preset's size) and the
    output folder. Returns ``(preset, device, inputs)``; the inputs' warnings are not given yet."""
    from ..inputs import prepare
    from ..presets import check_preset

    refuse_other_methods_flags(args, edit_defaults())
    cfg = config_from_args(args)
    if not cfg.output_file.endswith(".png"):
        raise usage(f"--output_file must end in .png, got {cfg.output_file!r}")
    if cfg.save_video:
        from ..video import check_format

        check_format("." + args.vid_format)  # e.g. mp4 without imageio
    preset, _ = preset_and_size(args)
    check_preset(preset)
    device = _device(args)
    for flag in ("unet_path", "clip_path"):
        path = getattr(args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag} {path}: no such file")
    inputs = prepare(preset, cfg.init_image, cfg.mask, cfg)
    _check_output_folder(Path(cfg.output_path))
    check_batch_fits(preset, cfg.batch_size, cfg.aug_num, device)
    return preset, device, inputs


def checked_inputs(args):
    """:func:`checked_edit_inputs` as ``(cfg, preset, device, image, mask)`` (the mask before
    ``--invert_mask``)."""
    preset, device, inputs = checked_edit_inputs(args)
    return inputs.cfg, preset, device, inputs.image, inputs.mask


def _check_output_folder(out: Path) -> None:
    """``--output_path``: a folder that exists or can be made, and that this user may write to."""
    from ..errors import InputError

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
    from ..hooks import IterationVideos
    from ..images import atomic_write, save_image
    from ..masks import mask_to_pil
    from ..models import load_models
    from ..runner import edit

    from ..threads import apply_thread_policy

    preset, device, inputs = checked_edit_inputs(args)
    cfg, image = inputs.cfg, inputs.image
    apply_thread_policy(preset, args.threads)
    inputs.warn()  # once, after every refusal and before the models load
    models = load_models(preset, device=device, unet_path=args.unet_path, clip_path=args.clip_path,
                         progress=not args.no_progress)
    out = Path(cfg.output_path)
    videos = IterationVideos(cfg, models.image_size, out, "." + args.vid_format) if cfg.save_video else None
    try:
        result = edit(models, inputs, hooks=[videos] if videos else [], progress=not args.no_progress)
    except BaseException:
        if videos:  # a failed run leaves nothing behind, not even the videos of batches that finished
            videos.discard()
        raise
    paths = result.save_ranked(out / "ranked")
    if not args.no_figures:
        from ..viz import save_comparison_figures

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

