"""``blendlab edit --method bld``: Blended Latent Diffusion from the command line, writing what
``blendlab edit`` writes (``ranked/``, the per-sample figures, ``assets/``, ``ranked.json``).

Every input is checked before a weight loads: the flags (a Blended Diffusion flag set with
``--method bld`` is refused, and a latent flag set without it), the :class:`LatentConfig`, the latent
model's size (read from its two ``config.json`` files), the image and the mask at that size (the mask
must survive at latent size), and the output folder. The samples are ranked by masked CLIP distance
(:func:`blendlab.latent.latent_edit`).

May import: errors, images, masks, viz, threads, latent, blendlab.cli.parser, blendlab.cli.edit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .parser import DEFAULT_LATENT_MODEL, edit_defaults, latent_fields, refuse_other_methods_flags, usage

__all__ = ["checked_latent_inputs", "run_latent_edit", "latent_model_name"]

#: The toy and tiny latent worlds by name (no download).
_NAMED = ("toy-latent", "tiny-latent")


def latent_model_name(args) -> str:
    """``--latent_model``, else the latent world matching ``--preset`` (toy -> toy-latent, tiny* ->
    tiny-latent), else Stable Diffusion (:data:`~blendlab.cli.parser.DEFAULT_LATENT_MODEL`)."""
    if args.latent_model:
        return args.latent_model
    preset = getattr(args, "preset", None) or ""
    if preset == "toy":
        return "toy-latent"
    if preset.startswith("tiny"):
        return "tiny-latent"
    if preset:
        raise usage(f"--preset {preset} is a Blended Diffusion model; with --method bld name a latent model "
                    f"with --latent_model ({DEFAULT_LATENT_MODEL}, a folder, toy-latent or tiny-latent)")
    return DEFAULT_LATENT_MODEL


def _image_size(name: str) -> tuple[int, int]:
    """(image side, pixels per latent cell) of the latent model ``name``, from its configs alone."""
    from ..latent.models import latent_image_size
    from ..latent.tiny import TINY_IMAGE_SIZE
    from ..latent.toy import TOY_LATENT

    if name == "tiny-latent":
        return TINY_IMAGE_SIZE, 4  # the tiny VAE: three blocks, two downsamplings
    return latent_image_size(TOY_LATENT if name == "toy-latent" else name)


def checked_latent_inputs(args):
    """Everything a ``--method bld`` command line can get wrong, before a weight loads. Returns
    ``(name, device, cfg, image, mask)``: the latent model's name, the device, the LatentConfig, and
    the image (1, 3, S, S) and mask (1, 1, S, S) at the model's side S."""
    from ..images import load_image
    from ..latent.config import LatentConfig
    from ..latent.sampler import latent_mask
    from ..masks import check_mask, full_mask, load_mask
    from .edit import _check_output_folder, _device

    refuse_other_methods_flags(args, edit_defaults())
    if not args.output_file.endswith(".png"):
        raise usage(f"--output_file must end in .png, got {args.output_file!r}")
    if not isinstance(args.iterations_num, int) or args.iterations_num < 1:
        raise usage(f"--iterations_num must be at least 1, got {args.iterations_num}")
    cfg = LatentConfig(prompt=args.prompt, batch_size=args.batch_size, seed=args.seed, invert_mask=args.invert_mask,
                       **{name: getattr(args, name) for name in latent_fields()})
    device = _device(args)
    name = latent_model_name(args)
    size, factor = _image_size(name)
    image = load_image(args.init_image, size=size)
    mask = full_mask(size) if args.mask is None else load_mask(args.mask, size=size)
    check_mask(mask, image)
    used = 1 - mask if cfg.invert_mask else mask
    latent_mask(used, (size // factor, size // factor))  # raises when the mask vanishes at latent size
    _check_output_folder(Path(args.output_path))
    return name, device, cfg, image, mask


def _load(name: str, device, progress: bool):
    from ..latent import load_latent_models, tiny_latent_models, toy_latent_models

    if name == "toy-latent":
        return toy_latent_models(device=device)
    if name == "tiny-latent":
        return tiny_latent_models(device=device)
    return load_latent_models(name, device=device, progress=progress)


def run_latent_edit(args) -> Path:
    from ..images import atomic_write, save_image
    from ..latent import latent_edit
    from ..masks import mask_to_pil
    from ..threads import apply_thread_policy

    name, device, cfg, image, mask = checked_latent_inputs(args)
    apply_thread_policy("toy" if name in _NAMED else "256-uncond", args.threads)
    models = _load(name, device, progress=not args.no_progress)
    result = latent_edit(models, image, mask, cfg, iterations=args.iterations_num, progress=not args.no_progress)
    out = Path(args.output_path)
    paths = result.save_ranked(out / "ranked")
    if not args.no_figures:
        from ..viz import save_comparison_figures

        save_comparison_figures(result, out, show_mask=args.mask is not None)
    if args.export_assets:
        assets = out / "assets"
        save_image(image, assets / args.output_file)
        if args.mask is not None:
            save_image(mask_to_pil(result.mask), assets / args.output_file.replace(".png", "_mask.png"))
        for i in range(result.images.shape[0]):
            save_image(result.images[i], assets / result.sample_name(i))
    summary = {"prompt": cfg.prompt, "method": "bld", "latent_model": name, "settings": dataclasses.asdict(cfg),
               "ranked": [{"file": str(p), "clip_distance": float(d)} for p, (_, d) in zip(paths, result.ranked)]}
    atomic_write(out / "ranked.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    print(f"{len(paths)} results of Blended Latent Diffusion ({name}) in {out / 'ranked'} "
          f"(best first: {paths[0].name})")
    return out
