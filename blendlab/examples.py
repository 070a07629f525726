"""Ready-made inputs for lessons, the demo and the EditorApp: an image, a mask and a prompt per
application, in two worlds.

- On the **toy** preset: scenes of coloured shapes drawn by :mod:`blendlab.toyworld` at the toy
  model's size, prompts such as "a red circle" (the toy models were trained on these).
- On every **other** preset: the Grace Hopper photo that ships with matplotlib and the prompts of
  the original lessons (with the tiny preset they run but show mechanics only).

``example(name, models)`` picks the world from ``models`` (or pass ``toy=`` and ``size=``). This room
sits beside :mod:`blendlab.applications`: it uses images, masks and the toy world, never the sampler.

May import: images, masks, toyworld.
"""

from __future__ import annotations

import dataclasses

import torch

from .images import load_image, sample_image
from .masks import box_mask, ellipse_mask
from .toyworld import ToyObject, object_mask, render_scene

__all__ = ["Example", "EXAMPLES", "example", "TOY_SCENE", "TOY_BACKGROUND", "TOY_EMPTY_BOX"]

#: The toy lessons' scene: a yellow square and a green triangle on sand, the right half empty.
TOY_SCENE = (
    ToyObject("yellow", "square", 0.28, 0.27, 0.36),
    ToyObject("green", "triangle", 0.27, 0.72, 0.38),
)
TOY_BACKGROUND = "sand"
#: Where the toy lessons add an object: an empty box on the right (x0, y0, x1, y1).
TOY_EMPTY_BOX = (0.5, 0.46, 0.98, 0.94)

EXAMPLES = ("insert", "replace", "background", "scribble", "extrapolate")


@dataclasses.dataclass
class Example:
    """Inputs for one application. ``image`` (1, 3, S, S) in [-1, 1]; ``mask`` (1, 1, S, S), 1 = edit
    (for "background", the object to *keep*: pass it to ``applications.replace_background``).

    ``scribble``/``scribble_mask`` are set for "scribble", ``prompts`` (side -> prompt) and
    ``fraction`` for "extrapolate"; ``toy`` says which world it comes from; ``what`` describes it.
    """

    name: str
    image: torch.Tensor
    mask: torch.Tensor
    prompt: str
    what: str
    toy: bool
    scribble: torch.Tensor | None = None
    scribble_mask: torch.Tensor | None = None
    prompts: dict | None = None
    fraction: float = 0.25


def _toy(name: str, size: int) -> Example:
    image = render_scene(TOY_SCENE, size, TOY_BACKGROUND)
    square, triangle = TOY_SCENE
    if name == "insert":
        return Example(name, image, box_mask(size, TOY_EMPTY_BOX), "a red circle",
                       "add an object in the empty area on the right", True)
    if name == "replace":
        return Example(name, image, object_mask(triangle, size), "a blue circle",
                       "replace the green triangle", True)
    if name == "background":
        return Example(name, image, object_mask(square, size, margin=0.03), "a black background",
                       "keep the yellow square, replace everything else", True)
    if name == "scribble":
        region = box_mask(size, TOY_EMPTY_BOX)
        blob = ellipse_mask(size, center=(0.74, 0.7), radii=(0.14, 0.12))
        red = render_scene([], size, TOY_BACKGROUND).clone()
        red[:, 0], red[:, 1], red[:, 2] = 0.7, -0.75, -0.75  # a rough red scribble colour
        return Example(name, image, region, "a red square", "a red scribble becomes a red square",
                       True, scribble=red, scribble_mask=blob)
    if name == "extrapolate":
        return Example(name, image, box_mask(size, (0.5, 0.0, 1.0, 1.0)), "a red circle",
                       "grow the canvas to the right with a new object", True,
                       prompts={"right": "a red circle"}, fraction=0.5)
    raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")


def _photo(name: str, size: int) -> Example:
    image = sample_image("grace_hopper", size=size)
    if name == "insert":
        return Example(name, image, ellipse_mask(size, center=(0.5, 0.17), radii=(0.3, 0.15)),
                       "a red knitted beanie", "a hat on her head (the mask over her cap)", False)
    if name == "replace":
        return Example(name, image, ellipse_mask(size, center=(0.5, 0.8), radii=(0.28, 0.18)),
                       "a knitted woollen sweater", "her jacket becomes a sweater", False)
    if name == "background":
        return Example(name, image, ellipse_mask(size, center=(0.5, 0.62), radii=(0.36, 0.5)),
                       "a snowy mountain landscape", "keep the person, replace the background", False)
    if name == "scribble":
        from PIL import Image

        white = load_image(Image.new("RGB", (size, size), "white"))
        return Example(name, image, ellipse_mask(size, center=(0.22, 0.3), radii=(0.18, 0.2)),
                       "a white dove", "a white scribble becomes a dove", False, scribble=white,
                       scribble_mask=ellipse_mask(size, center=(0.22, 0.3), radii=(0.1, 0.1)))
    if name == "extrapolate":
        return Example(name, image, box_mask(size, (0.0, 0.0, 0.25, 1.0)), "hell",
                       "the paper's hell | input | heaven", False,
                       prompts={"left": "hell", "right": "heaven"}, fraction=0.25)
    raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")


def example(name: str, models=None, *, toy: bool | None = None, size: int | None = None) -> Example:
    """The inputs of application ``name`` (one of :data:`EXAMPLES`) for ``models``' world and size."""
    if toy is None:
        toy = bool(getattr(models, "is_toy", False))
    if size is None:
        if models is None:
            raise ValueError("give models, or size= (and toy=)")
        size = models.image_size
    return (_toy if toy else _photo)(name, int(size))
