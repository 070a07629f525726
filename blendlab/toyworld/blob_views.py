"""Training views of colour regions that are *not* shapes, for the toy CLIP's hard negatives.

A blob view (:func:`_blob_view`) paints an irregular colour blob into a region kept clear of objects:
true for "a {colour} shape", false for every named shape, so that filling a region with the prompt's
colour does not satisfy "a red circle". A split view (:func:`_split_view`) cuts a region into two
colours by a straight line (what guidance made of "a red triangle"). Candidates that happen to look
like one of the world's shapes are drawn again. :mod:`.train_clip` mixes them into its views.

May import: toyworld.world.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .world import COLORS, SHAPES, _box, _grid, random_layout, render_scene, shape_coverage


def _rect(size: int, box) -> torch.Tensor:
    return _box(size, box)[0]


def _object_fraction(obj, mask: torch.Tensor, size: int) -> float:
    u, v = _grid(size)
    inside = shape_coverage(obj.shape, obj.x, obj.y, obj.size, obj.size, u, v).float()
    area = F.avg_pool2d(inside[None, None], u.shape[0] // size)[0]
    return float((area * mask).sum() / area.sum().clamp_min(1e-6))


def _looks_like_a_shape(inside: torch.Tensor, u, v) -> bool:
    """Whether a supersampled boolean blob is close (IoU > 0.75) to a circle, square or triangle
    fitted to its bounding box: such a blob would be a mislabelled shape, not a blob."""
    rows, cols = torch.nonzero(inside.any(1)).flatten(), torch.nonzero(inside.any(0)).flatten()
    if len(rows) == 0:
        return True
    n = inside.shape[0]
    y0, y1, x0, x1 = rows[0] / n, (rows[-1] + 1) / n, cols[0] / n, (cols[-1] + 1) / n
    if not 0.8 <= float((x1 - x0) / (y1 - y0)) <= 1.25:
        return False  # stretched: no shape of the world
    for shape in SHAPES:
        t = shape_coverage(shape, float(x0 + x1) / 2, float(y0 + y1) / 2, float(x1 - x0), float(y1 - y0), u, v)
        if float((t & inside).sum()) / float((t | inside).sum()) > 0.75:
            return True
    return False


def _blob(rng: np.random.Generator, region, size: int) -> torch.Tensor:
    """Coverage (1, S, S) in [0, 1] of an irregular blob inside ``region``: one stretched ellipse or
    rectangle, or the union of two or three — a colour region that is *not* one of the world's shapes
    (candidates that look like one are drawn again)."""
    u, v = _grid(size)
    for _ in range(20):
        inside = _blob_parts(rng, region, u, v)
        if not _looks_like_a_shape(inside, u, v):
            break
    return F.avg_pool2d(inside.float()[None, None], u.shape[0] // size)[0]


def _blob_parts(rng: np.random.Generator, region, u, v) -> torch.Tensor:
    x0, y0, x1, y1 = region
    side = x1 - x0
    n = int(rng.integers(1, 4))
    inside = torch.zeros_like(u, dtype=torch.bool)
    for _ in range(n):
        w = float(rng.uniform(0.35, 1.0)) * side
        h = float(rng.uniform(0.35, 1.0)) * side
        if n == 1:  # a single part must be visibly stretched, or it would be a circle or a square
            h = w * float(rng.choice([rng.uniform(0.35, 0.7), rng.uniform(1.45, 2.6)]))
            h = min(h, side)
        cx = float(rng.uniform(x0 + w / 2, max(x0 + w / 2, x1 - w / 2)))
        cy = float(rng.uniform(y0 + h / 2, max(y0 + h / 2, y1 - h / 2)))
        inside |= shape_coverage(str(rng.choice(["circle", "square"])), cx, cy, w, h, u, v)
    return inside


def _region_scene(rng: np.random.Generator, size: int):
    """A random square region and a scene clear of it: ``(region, objects, background, image)``."""
    side = float(rng.uniform(0.3, 0.7))
    bx, by = rng.uniform(0, 1 - side, size=2)
    region = (float(bx), float(by), float(bx + side), float(by + side))
    objects, background = random_layout(rng)
    objects = [o for o in objects if not (o.box[0] < region[2] and region[0] < o.box[2]
                                          and o.box[1] < region[3] and region[1] < o.box[3])]
    return region, objects, background, render_scene(objects, size, background)[0]


def _paint(image: torch.Tensor, colour_name: str, alpha: torch.Tensor) -> torch.Tensor:
    colour = torch.tensor(COLORS[colour_name], dtype=torch.float32).view(3, 1, 1) / 127.5 - 1
    return image * (1 - alpha) + colour * alpha


def _blob_view(rng: np.random.Generator, size: int):
    region, objects, background, image = _region_scene(rng, size)
    alpha = _blob(rng, region, size)
    colour_name = str(rng.choice(list(COLORS)))
    image = _paint(image, colour_name, alpha)
    mask = _rect(size, region)  # the blob lies inside it (an ellipse could cut it into a circle)
    visible = [(colour_name, "blob")] + [(o.colour, o.shape) for o in objects
                                         if _object_fraction(o, mask, size) >= 0.6]
    covered = float((alpha * mask).sum())
    bg_seen = background if float(mask.sum()) - covered > 0.25 * float(mask.sum()) else None
    fill = "grey" if rng.random() < 0.7 else "black"
    return image, mask, fill, visible, bg_seen, objects, background, None


def _split(rng: np.random.Generator, region, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coverages (1, S, S) of the two parts of ``region`` cut by a random straight line (through a
    point near its centre, any angle): neither part one of the world's shapes (a cut that makes a
    triangle or a square of either part is drawn again)."""
    u, v = _grid(size)
    x0, y0, x1, y1 = region
    box = (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for _ in range(20):
        angle = float(rng.uniform(0, np.pi))
        ox, oy = rng.uniform(-0.2, 0.2, size=2) * (x1 - x0)
        side = (u - cx - float(ox)) * np.cos(angle) + (v - cy - float(oy)) * np.sin(angle) > 0
        a, b = box & side, box & ~side
        if a.any() and b.any() and not (_looks_like_a_shape(a, u, v) or _looks_like_a_shape(b, u, v)):
            break
    return tuple(F.avg_pool2d(part.float()[None, None], u.shape[0] // size)[0] for part in (a, b))


def _split_view(rng: np.random.Generator, size: int):
    """A square region in two colours either side of a line (what guidance made of "a red triangle"):
    true only for "a {colour} shape" of each colour, never a named shape (its parts are not shapes)."""
    region, objects, background, image = _region_scene(rng, size)
    names = [str(c) for c in rng.choice(list(COLORS), size=2, replace=False)]
    for name, alpha in zip(names, _split(rng, region, size)):
        image = _paint(image, name, alpha)
    margin = float(rng.uniform(0.0, 0.1))
    mask = _rect(size, (region[0] - margin, region[1] - margin, region[2] + margin, region[3] + margin))
    visible = [(n, "blob") for n in names] + [(o.colour, o.shape) for o in objects
                                              if _object_fraction(o, mask, size) >= 0.6]
    fill = "grey" if rng.random() < 0.7 else "black"
    return image, mask, fill, visible, None, objects, background, None
