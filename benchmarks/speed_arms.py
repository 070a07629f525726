"""The speed benchmark's arms and what they run on: the model configs (``tiny``; ``mid``, a 64 px,
64-channel UNet of the same family with the tiny CLIP; ``real``, the paper's 256-uncond UNet + ViT-B/16),
the image, mask and :class:`blendlab.EditConfig` every arm shares, a forward counter, and
:func:`run_once`: one timed batch of one arm —

* ``blendlab``: :class:`blendlab.BlendedSampler` (1 UNet forward per step);
* ``reference``: :mod:`benchmarks.reference_loop` (the authors' loop: 2 UNet forwards per step);
* ``recorder``: blendlab with a :class:`blendlab.Recorder` on every step (downscaled copies).

May import: blendlab, benchmarks.machine, benchmarks.reference_loop, benchmarks.flops.
"""

from __future__ import annotations

import os
import time

import torch

import blendlab as bl
from blendlab.models import Models, build_tiny_clip, build_unet, count_parameters, diffusion_config, unet_config

from benchmarks.machine import load_average
from benchmarks.reference_loop import ReferenceSampler

__all__ = ["MID_UNET", "METHODS", "DEFAULTS", "PROMPT", "build_models", "bench_config", "inputs", "ForwardCounter",
           "sync", "run_once"]


#: The mid-size UNet: the tiny preset's family at 64 px and 64 channels, attention at 16 and 8.
MID_UNET = dict(image_size=64, num_channels=64, channel_mult="1,2,3,4", attention_resolutions="16,8",
                num_head_channels=64, num_res_blocks=1)


METHODS = ("blendlab", "reference", "recorder")


#: Per config: steps and batch of the default run (--quick: 2 steps, batch 2), and the default
#: repeats where they differ from 7. Runs are short and many, so that alternating neighbours see the
#: same load on a shared machine; every step costs the same, so s/sample@75 extrapolates them to the
#: paper's 75 steps. The real config runs the reference's batch of 4.
DEFAULTS = {"tiny": dict(steps=25, batch=2), "mid": dict(steps=10, batch=1),
            "real": dict(steps=25, batch=4, repeats=3)}


PROMPT = "a stone"


def _fill_zero_weights(unet: torch.nn.Module) -> None:
    # guided_diffusion zero-initialises output convolutions; random weights keep the graph honest
    for p in unet.parameters():
        if p.dim() > 1 and not torch.any(p):
            torch.nn.init.normal_(p, std=0.02)


def build_models(name: str, device: str | torch.device | None = None) -> tuple[Models, dict]:
    """The models of a benchmark config and a description of them.

    ``tiny``: the tiny preset. ``mid``: :data:`MID_UNET` built with ``build_unet`` + the tiny CLIP
    (random weights, seeded). ``real``: the 256-uncond preset if its weights are cached, else random
    weights of the same architecture (timing does not need trained weights), fp16 UNet on CUDA as
    the reference.
    """
    device = torch.device(device) if device is not None else bl.models.default_device()
    if name == "tiny":
        models = bl.load_models("tiny", device=device)
        weights = "random (tiny preset)"
    elif name == "mid":
        config = dict(unet_config("tiny"), **MID_UNET)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(0)
            unet = build_unet(config)
            _fill_zero_weights(unet)
        finally:
            torch.random.set_rng_state(state)
        models = Models(unet=unet.to(device).eval().requires_grad_(False),
                        clip=build_tiny_clip().to(device).eval().requires_grad_(False),
                        image_size=MID_UNET["image_size"], preset="tiny-mid64", device=device,
                        unet_config=config, diffusion_config=diffusion_config(), clip_name="tiny")
        weights = "random (seeded)"
    elif name == "real":
        models, weights = _real_models(device)
    else:
        raise ValueError(f"unknown benchmark config {name!r}; choose tiny, mid or real")
    desc = dict(unet_params=count_parameters(models.unet), clip_params=count_parameters(models.clip),
                image_size=models.image_size, clip_size=models.clip_size, clip=models.clip_name,
                weights=weights, device=str(device), precision=models.precision)
    return models, desc


def _real_models(device: torch.device) -> tuple[Models, str]:
    old = os.environ.get("BLENDLAB_OFFLINE")
    os.environ["BLENDLAB_OFFLINE"] = "1"  # a cache hit or nothing: never start a 2 GB download here
    try:
        return bl.load_models("256-uncond", device=device, progress=False), "trained (cached checkpoints)"
    except (bl.WeightsNotFoundError, bl.DownloadError, bl.CheckpointError, FileNotFoundError):
        pass
    finally:
        if old is None:
            os.environ.pop("BLENDLAB_OFFLINE", None)
        else:
            os.environ["BLENDLAB_OFFLINE"] = old
    import clip.model

    from benchmarks.flops import REAL_CLIP

    use_fp16 = device.type == "cuda"
    config = dict(unet_config("256-uncond"), use_fp16=use_fp16)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        unet = build_unet(config, device=device).eval().requires_grad_(False)
        with torch.device(device):
            clip_net = clip.model.CLIP(**REAL_CLIP)
    finally:
        torch.random.set_rng_state(state)
    if use_fp16:  # as load_models and clip.load do on CUDA
        unet.convert_to_fp16()
        clip.model.convert_weights(clip_net)
    else:
        clip_net = clip_net.float()
    models = Models(unet=unet, clip=clip_net.eval().requires_grad_(False), image_size=256,
                    preset="256-uncond", device=device, unet_config=config,
                    diffusion_config=diffusion_config(), clip_name="ViT-B/16",
                    precision="fp16" if use_fp16 else "fp32")
    return models, "random (real architecture; checkpoints not cached)"


def bench_config(steps: int, batch: int, aug_num: int = 8, seed: int = 0, **extra) -> bl.EditConfig:
    """The EditConfig both loops run: the paper's losses and 8 views, the last ``steps`` of 100."""
    return bl.EditConfig(prompt=PROMPT, timestep_respacing="100", skip_timesteps=100 - steps,
                         batch_size=batch, iterations_num=1, aug_num=aug_num, seed=seed, **extra)


def inputs(models: Models) -> tuple[torch.Tensor, torch.Tensor]:
    size = models.image_size
    return bl.sample_image("grace_hopper", size=size), bl.box_mask(size, (0.25, 0.3, 0.75, 0.8))


class ForwardCounter:
    """Counts calls of a module (a forward hook) and the rows (batch entries) they processed."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.calls = 0
        self.rows = 0
        self._handle = None

    def _hook(self, module, args, output):
        self.calls += 1
        self.rows += int(args[0].shape[0]) if args else 0

    def __enter__(self):
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(method: str, models: Models, image, mask, cfg: bl.EditConfig, recorder_size: int | None = None) -> dict:
    """Run one batch with ``method`` ("blendlab", "reference" or "recorder"); time and count it."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    device = models.device
    hooks = []
    if method == "recorder":
        hooks = [bl.Recorder(every=1, size=recorder_size)]
    with ForwardCounter(models.unet) as counter:
        sync(device)
        cpu_start = time.process_time()
        start = time.perf_counter()
        if method == "reference":
            torch.manual_seed(cfg.seed)
            out = ReferenceSampler(models, image, mask, cfg).run()
        else:
            out = bl.BlendedSampler(models, image, mask, cfg).run(hooks)
        sync(device)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    if not torch.isfinite(out).all():
        raise RuntimeError(f"{method} produced non-finite images")
    result = dict(seconds=seconds, cpu_seconds=cpu_seconds, load_1min=load_average(), steps=cfg.num_steps,
                  batch=cfg.batch_size, unet_forwards=counter.calls,
                  forwards_per_step=counter.calls / cfg.num_steps)
    if method == "recorder":
        result["recorded_steps"] = len(hooks[0])
        result["recorded_mb"] = hooks[0].nbytes / 2**20
    return result

