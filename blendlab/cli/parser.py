"""The command line's flags: one argparse parser over :class:`EditConfig` for ``edit``, ``demo``,
``download`` and ``sweep``, and the preset a command line asks for.

``--help`` shows every default (from :class:`EditConfig`) and every preset (from
:data:`blendlab.presets.PRESETS`, with its description).

May import: sampler, models, presets, latent.config, blendlab.sweep.command.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..sweep import command as sweep_command

__all__ = ["refuse_other_methods_flags", "edit_defaults", "latent_fields", "BD_ONLY", "build_parser", "config_from_args", "preset_and_size", "usage", "UsageError", "PRESET_FOR_SIZE"]

def _preset_for_size() -> dict[int, str]:
    from ..presets import PRESETS, output_size

    return {output_size(name): name for name in PRESETS if output_size(name)}


#: The real preset of each ``--model_output_size`` (from :func:`blendlab.presets.output_size`).
PRESET_FOR_SIZE = _preset_for_size()


VIDEO_FORMATS = ("apng", "gif", "webp", "mp4")
#: ``--method``: Blended Diffusion, or Blended Latent Diffusion (blendlab.latent).
METHODS = ("bd", "bld")
#: The latent model ``--method bld`` loads without ``--latent_model`` or a toy/tiny ``--preset``.
DEFAULT_LATENT_MODEL = "stabilityai/stable-diffusion-2-1-base"  # = blendlab.latent.STABLE_DIFFUSION


def _defaults():
    from ..sampler import EditConfig

    return {f.name: f.default for f in dataclasses.fields(EditConfig)}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: ...)`` after every flag that has a value by default (not after on/off switches
    or flags whose default the help explains)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool) or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action)


def preset_help(default_says: str) -> str:
    """The ``--preset`` help: every preset of :data:`blendlab.presets.PRESETS` and what it is."""
    from ..presets import PRESETS

    listed = "; ".join(f"{name}: {spec['description']}" for name, spec in PRESETS.items())
    return f"model preset, one of {listed} ({default_says})"


def _threads_flag(p) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: blendlab.threads' policy for the preset: at most two for "
                        "toy and tiny, unless $BLENDLAB_THREADS or $OMP_NUM_THREADS says otherwise; torch's "
                        "default for real presets)")


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
    loss.add_argument("--clip_guidance_lambda", type=float, default=d["clip_guidance_lambda"], help="weight of the CLIP loss")
    loss.add_argument("--range_lambda", type=float, default=d["range_lambda"], help="weight of the range loss (x̂0 within [-1, 1])")
    loss.add_argument("--lpips_sim_lambda", type=float, default=d["lpips_sim_lambda"],
                      help="weight of the LPIPS background loss (with --background_preservation_loss)")
    loss.add_argument("--l2_sim_lambda", type=float, default=d["l2_sim_lambda"],
                      help="weight of the L2 background loss (with --background_preservation_loss)")
    loss.add_argument("--background_preservation_loss", action="store_true",
                      help="baseline: L2/LPIPS loss to the input outside the mask")
    m = p.add_argument_group("mask")
    m.add_argument("--invert_mask", action="store_true", help="edit outside the mask (background replacement)")
    m.add_argument("--no_enforce_background", action="store_false", dest="enforce_background",
                   help="do not paste the input outside the mask at the end")
    misc = p.add_argument_group("misc")
    misc.add_argument("--seed", type=int, default=d["seed"], help="random seed of the noise and the augmentations")
    misc.add_argument("--gpu_id", type=int, default=d["gpu_id"], help="CUDA device index when --device is not given")
    misc.add_argument("--output_path", type=str, default=d["output_path"], help="folder of the outputs (made if missing)")
    misc.add_argument("-o", "--output_file", type=str, default=d["output_file"],
                      help="file name stem of the outputs, must end in .png")
    misc.add_argument("--iterations_num", type=int, default=d["iterations_num"], help="batches to sample")
    misc.add_argument("--batch_size", type=int, default=d["batch_size"],
                      help="samples per batch; one that will not fit in memory is refused before any work")
    misc.add_argument("--vid", action="store_true", dest="save_video",
                      help="save a video of x̂0 over the steps for every sample (every step; the last "
                           "frame is the saved result); the format is --vid_format")
    misc.add_argument("--export_assets", action="store_true",
                      help="also save the input, the mask and every unranked result in assets/")
    extra = p.add_argument_group("blendlab extras")
    extra.add_argument("--preset", type=str, default=None,
                       help=preset_help("default from --model_output_size, which must agree with a real "
                                        "preset; the toy and tiny presets run offline at 32 px whatever the size"))
    extra.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:1 (default: --gpu_id if CUDA)")
    extra.add_argument("--unet_path", type=str, default=None, help="use this UNet checkpoint file")
    extra.add_argument("--clip_path", type=str, default=None, help="use this CLIP checkpoint file")
    extra.add_argument("--vid_format", choices=VIDEO_FORMATS, default=VIDEO_FORMATS[0],
                       help="format of --vid: apng (lossless animated PNG), gif (at most 256 colours), "
                            "webp (lossless), mp4 (needs imageio[ffmpeg])")
    extra.add_argument("--no_progress", action="store_true", help="no progress bars")
    _threads_flag(extra)
    extra.add_argument("--no_figures", action="store_true",
                       help="do not write the per-sample source | mask | edited figures")
    extra.add_argument("--reference_ranking", action="store_true", default=d["reference_ranking"],
                       help="rank by the reference's distances (masked views fed to CLIP unnormalised)")
    extra.add_argument("--method", choices=METHODS, default="bd",
                       help="bd: Blended Diffusion (the paper); bld: Blended Latent Diffusion (its authors' "
                            "faster sequel, on a latent diffusion model: the flags below)")
    _add_latent_flags(p)


def _add_latent_flags(p: argparse.ArgumentParser) -> None:
    from ..latent.config import BACKGROUND_LEVELS, RECONSTRUCTIONS, LatentConfig

    d = {f.name: f.default for f in dataclasses.fields(LatentConfig)}
    g = p.add_argument_group("Blended Latent Diffusion (--method bld; --prompt, --init_image, --mask, "
                             "--invert_mask, --seed, --batch_size, --iterations_num and the outputs as above)")
    g.add_argument("--latent_model", type=str, default=None,
                   help="a Hub id (stabilityai/stable-diffusion-2-1-base), a folder written by "
                        "LatentModels.save_pretrained, toy-latent (the toy latent world, shipped) or tiny-latent; "
                        "default: toy-latent with --preset toy, tiny-latent with a tiny preset, else "
                        f"{DEFAULT_LATENT_MODEL}")
    g.add_argument("--num_steps", type=int, default=d["num_steps"], help="DDIM steps of the whole schedule")
    g.add_argument("--blending_start", type=float, default=d["blending_start"],
                   help="the fraction of the steps skipped (the reference's blending_start_percentage)")
    g.add_argument("--guidance_scale", type=float, default=d["guidance_scale"],
                   help="classifier-free guidance scale (1 = none)")
    g.add_argument("--negative_prompt", type=str, default=d["negative_prompt"], help="guidance steers away from it")
    g.add_argument("--mask_dilation_iterations", type=int, default=d["mask_dilation_iterations"],
                   help="progressive mask shrinking for thin masks (0 = off)")
    g.add_argument("--pixel_blending", type=float, default=d["pixel_blending"],
                   help="the last fraction of the steps blended in pixels (0 = off)")
    g.add_argument("--reconstruction", choices=RECONSTRUCTIONS, default=d["reconstruction"],
                   help="the background after decoding: none (the reference), pixel (paste the input outside "
                        "the mask) or poisson (seamless cloning)")
    g.add_argument("--background_level", choices=BACKGROUND_LEVELS, default=d["background_level"],
                   help="the noise level of the blended-in background: input (one step noisier, the reference) "
                        "or output")
    g.add_argument("--ddim_eta", type=float, default=d["ddim_eta"], help="DDIM stochasticity (0 = deterministic)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blendlab", description="Blended Diffusion: text-driven editing of natural images",
        formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_edit = sub.add_parser("edit", help="edit an image region with a text prompt (reference flags)")
    _add_edit_flags(p_edit, prompt_required=True)
    p_demo = sub.add_parser("demo", help="a complete offline edit on CPU in the toy world")
    p_demo.add_argument("--output_path", default="demo_output",
                        help="folder of the ranked results, comparison.png, steps.png and judge.json")
    p_demo.add_argument("--preset", default="toy", help=preset_help("toy: the trained toy world, offline"))
    p_demo.add_argument("--prompt", default=None, help="default: the example's ('a red circle' in the toy world)")
    p_demo.add_argument("--no_progress", action="store_true", help="no progress bars")
    _threads_flag(p_demo)
    p_dl = sub.add_parser("download", help="fetch the weights of a preset into the cache")
    p_dl.add_argument("--preset", default="256-uncond", help="256-uncond or 512-cond (the others need no download)")
    p_dl.add_argument("--clip_model", default="ViT-B/16", help="the CLIP model the presets use")
    p_dl.add_argument("--cache_dir", default=None, help="default: $BLENDLAB_HOME/checkpoints, else ~/.cache/blendlab/checkpoints")
    sweep_command.add_sweep_parser(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


#: Blended Diffusion's flags (argparse dest -> flag) that mean nothing to ``--method bld``.
BD_ONLY = {"skip_timesteps": "--skip_timesteps", "local_clip_guided_diffusion": "--local_clip_guided_diffusion",
           "ddim": "--ddim", "timestep_respacing": "--timestep_respacing", "model_output_size": "--model_output_size",
           "aug_num": "--aug_num", "clip_guidance_lambda": "--clip_guidance_lambda", "range_lambda": "--range_lambda",
           "lpips_sim_lambda": "--lpips_sim_lambda", "l2_sim_lambda": "--l2_sim_lambda",
           "background_preservation_loss": "--background_preservation_loss",
           "enforce_background": "--no_enforce_background", "unet_path": "--unet_path", "clip_path": "--clip_path",
           "save_video": "--vid", "reference_ranking": "--reference_ranking"}


def latent_fields() -> list[str]:
    """The LatentConfig fields ``--method bld`` has flags of its own for (the shared ones excluded)."""
    from ..latent.config import LatentConfig

    return [f.name for f in dataclasses.fields(LatentConfig) if f.name not in ("prompt", "batch_size", "seed",
                                                                               "invert_mask")]


def refuse_other_methods_flags(args, parser_defaults: dict) -> None:
    """A flag of the method not chosen, set to other than its default, is a usage error naming it."""
    if args.method == "bld":
        wrong = [flag for dest, flag in BD_ONLY.items() if getattr(args, dest) != parser_defaults[dest]]
        if wrong:
            raise usage(f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} Blended Diffusion's; "
                        "Blended Latent Diffusion (--method bld) has no CLIP guidance, no respacing and no "
                        "per-sample videos: drop them, or run --method bd")
    else:
        wrong = [f"--{dest}" for dest in latent_fields() + ["latent_model"]
                 if getattr(args, dest) != parser_defaults[dest]]
        if wrong:
            raise usage(f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} for Blended Latent Diffusion; "
                        "add --method bld, or drop them")


def edit_defaults() -> dict:
    """Every ``blendlab edit`` flag's default, by argparse dest."""
    p = argparse.ArgumentParser()
    _add_edit_flags(p, prompt_required=False)
    return {a.dest: a.default for a in p._actions if a.dest != "help"}


def config_from_args(args: argparse.Namespace):
    from ..sampler import EditConfig

    names = {f.name for f in dataclasses.fields(EditConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    _, values["model_output_size"] = preset_and_size(args)
    return EditConfig(**values)


def preset_and_size(args: argparse.Namespace) -> tuple[str, int]:
    """The model preset and ``model_output_size`` of an ``edit`` command line.

    Without ``--preset`` the size picks the preset; with a real preset the size is the preset's,
    and a ``--model_output_size`` that says otherwise is a usage error. Tiny presets are not
    constrained by the size (they always work at 32 px).
    """
    from ..presets import PRESETS, output_size
    from ..sampler import EditConfig

    size = getattr(args, "model_output_size", None)
    preset = getattr(args, "preset", None)
    if preset is None:
        size = EditConfig.model_output_size if size is None else size
        return PRESET_FOR_SIZE.get(size), size  # another size: EditConfig explains
    preset_size = output_size(preset) if preset in PRESETS else None
    if preset_size is None:  # a small preset, or unknown (load_models names the choices)
        return preset, EditConfig.model_output_size if size is None else size
    if size is None or size == preset_size or size not in PRESET_FOR_SIZE:
        return preset, preset_size if size is None else size  # another size: EditConfig explains
    raise usage(
        f"--preset {preset} works at {preset_size}x{preset_size} but --model_output_size is {size}; "
        f"drop --model_output_size (the preset sets it) or use --preset {PRESET_FOR_SIZE[size]}"
    )


class UsageError(ValueError):
    """A command line that contradicts itself: argparse reports it (exit status 2)."""


def usage(msg: str) -> UsageError:
    return UsageError(msg)

