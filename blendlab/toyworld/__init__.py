"""The toy world: a procedural domain of coloured shapes where Blended Diffusion works on a CPU.

Its pieces: the world (:mod:`.world`: scenes, captions, written signs in the pixel font of :mod:`.font`),
an independent judge (:mod:`.judge`: colour, shape and text), the zero-shot typographic attack
(:mod:`.attack`), and
the training scripts (:mod:`.train_unet`, :mod:`.train_clip`) whose outputs ship in ``weights/`` and
make the ``"toy"`` preset of :func:`blendlab.load_models`. Everything here is a toy world trained on
this project's machines; it never stands in for the paper's results.

May import: toyworld.world.
"""

from .world import (
    BACKGROUNDS,
    COLORS,
    DEFAULT_SIZE,
    SHAPES,
    SIGN_WORDS,
    Sign,
    ToyObject,
    caption,
    empty_box,
    object_mask,
    parse_caption,
    random_layout,
    random_scene,
    render_scene,
    scene_caption,
    write_word,
)

__all__ = [
    "BACKGROUNDS",
    "COLORS",
    "DEFAULT_SIZE",
    "SHAPES",
    "SIGN_WORDS",
    "Sign",
    "ToyObject",
    "caption",
    "empty_box",
    "object_mask",
    "parse_caption",
    "random_layout",
    "random_scene",
    "render_scene",
    "scene_caption",
    "write_word",
]
