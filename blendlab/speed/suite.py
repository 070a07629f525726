"""The toy suite and its judged runs: a fixed, seeded set of toy-world edits ("a {colour} {shape}"
into an empty masked area of several scenes) and :func:`run_suite_edit`, one of them run to a ranked
set with its CPU/wall time, UNet and CLIP work counted and the toy world's judge on every sample.

May import: runner, config, masks, toyworld.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time

import torch

from ..config import EditConfig
from ..masks import box_mask
from ..toyworld import COLORS, SHAPES, random_layout, render_scene
from ..toyworld.judge import judge

__all__ = ["REGIONS", "SuiteEdit", "toy_suite", "run_suite_edit"]

#: Empty regions (x0, y0, x1, y1) the suite's edits go into; the scenes keep them free.
REGIONS = ((0.5, 0.46, 0.98, 0.94), (0.02, 0.04, 0.5, 0.52), (0.5, 0.02, 0.98, 0.5), (0.02, 0.5, 0.5, 0.98))


@dataclasses.dataclass
class SuiteEdit:
    """One edit: put "a {colour} {shape}" into ``mask`` of ``image`` with ``seed``."""

    index: int
    scene: int
    image: torch.Tensor
    mask: torch.Tensor
    colour: str
    shape: str
    seed: int

    @property
    def prompt(self) -> str:
        return f"a {self.colour} {self.shape}"


def toy_suite(scenes: int = 4, prompts_per_scene: int = 4, size: int = 32, seed: int = 0) -> list[SuiteEdit]:
    """A seeded suite: ``scenes`` toy scenes (two objects, one empty region each) × ``prompts_per_scene``
    prompts, the colour × shape pairs dealt in a seeded order so every colour and shape recurs."""
    pairs = list(itertools.product(COLORS, SHAPES))
    random.Random(seed).shuffle(pairs)
    edits = []
    for s in range(scenes):
        region = REGIONS[s % len(REGIONS)]
        objects, background = random_layout(2000 + 100 * seed + s, n_objects=2, keep_free=region)
        image, mask = render_scene(objects, size, background), box_mask(size, region)
        for p in range(prompts_per_scene):
            k = s * prompts_per_scene + p
            colour, shape = pairs[k % len(pairs)]
            edits.append(SuiteEdit(k, s, image, mask, colour, shape, seed=1000 * seed + k))
    return edits


# -- running and judging ----------------------------------------------------------------------------
def _blendlab_edit(models, image, mask, cfg):
    from ..runner import edit  # the runner (a room above the sampler)

    result = edit(models, image, mask, cfg, progress=False)
    return result.images, result.distances, result.sample_masks


def run_suite_edit(models, item: SuiteEdit, cfg: EditConfig, generate=None, keep_images: bool = False) -> dict:
    """Run one suite edit to a ranked set and judge every sample.

    ``generate(models, image, mask, cfg) -> (images, distances, masks)`` makes the ranked set
    (default :func:`blendlab.edit`; the benchmark passes the reference loop). Returns a JSON-ready
    record: ``cpu_s``/``wall_s`` of ``generate``; ``unet_forwards``, ``unet_rows`` (batch entries),
    ``unet_backwards`` (forwards that built a graph; each is back-propagated once), ``clip_views``
    (images CLIP encoded, ranking included); per sample ``correct`` (colour and shape) and
    ``colour_correct``; ``order`` (best first) and the best-ranked sample's verdict; with
    ``keep_images`` also ``images`` (N, 3, H, W), best first (not JSON).
    """
    generate = generate or _blendlab_edit
    cfg = cfg.replace(prompt=item.prompt, seed=item.seed)
    counts = dict(unet_forwards=0, unet_rows=0, unet_backwards=0, clip_views=0)

    def on_unet(module, args, output):
        counts["unet_forwards"] += 1
        counts["unet_rows"] += int(args[0].shape[0])
        counts["unet_backwards"] += int(output.requires_grad)

    def on_clip(module, args, output):
        counts["clip_views"] += int(args[0].shape[0])

    handles = [models.unet.register_forward_hook(on_unet), models.clip.visual.register_forward_hook(on_clip)]
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        images, distances, masks = generate(models, item.image, item.mask, cfg)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        for h in handles:
            h.remove()
    verdicts = judge(images, masks)
    order = torch.argsort(distances.detach().cpu(), stable=True).tolist()
    correct = [v.holds(item.colour, item.shape) for v in verdicts]
    colour_correct = [v.holds(item.colour) for v in verdicts]
    record = dict(edit=item.index, scene=item.scene, prompt=item.prompt, seed=item.seed, cpu_s=cpu, wall_s=wall,
                  **counts, samples=len(verdicts), correct=correct, colour_correct=colour_correct, order=order,
                  best_correct=correct[order[0]], best_colour_correct=colour_correct[order[0]],
                  verdicts=[[v.colour, v.shape] for v in verdicts])
    if keep_images:
        record["images"] = images.detach().cpu()[order]
    return record
