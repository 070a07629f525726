"""Blended Diffusion *works* in the toy world, with the paper's settings, judged independently.

These tests fail if the method breaks: the prompt's colour must appear in the mask (red for "a red
circle", blue for "a blue circle"), the outside must stay the input, and without a prompt the
requested colour must not appear reliably. Checked against three broken versions of the method
with the shipped weights (a hook swapping fg and bg in the blend; CLIP shown the whole x_in instead
of the masked one; the gradient's sign flipped in the sampler): each fails at least one test here —
the swap and the flip fail the colour, shape and ranking tests, the unmasked CLIP the shape test.
"""

import pytest
import torch

import blendlab as bl
from blendlab.examples import example
from blendlab.toyworld.judge import judge

# The paper's guidance settings (λ_clip 1000, λ_range 50, 8 views, 100 steps, 25 skipped); one batch.
PAPER = dict(batch_size=4, iterations_num=1)


@pytest.fixture(scope="module")
def scene(toy):
    return example("insert", toy)


@pytest.fixture(scope="module")
def edits(toy, scene):
    out = {}
    for prompt in ("a red circle", "a blue circle", ""):
        cfg = bl.EditConfig(prompt=prompt, seed=1, **PAPER)
        out[prompt] = bl.edit(toy, scene.image, scene.mask, cfg, progress=False)
    return out


def _colours(result):
    return [v.colour for v in judge(result.images, result.sample_masks)]


def test_the_prompt_decides_the_colour_in_the_mask(edits):
    red, blue = _colours(edits["a red circle"]), _colours(edits["a blue circle"])
    assert red.count("red") >= 3, red
    assert blue.count("blue") >= 3, blue


def test_the_prompt_decides_the_shape_often(edits):
    verdicts = judge(edits["a red circle"].images, edits["a red circle"].sample_masks)
    verdicts += judge(edits["a blue circle"].images, edits["a blue circle"].sample_masks)
    assert sum(v.shape == "circle" for v in verdicts) >= 3, [(v.colour, v.shape) for v in verdicts]


def test_the_outside_is_the_input_exactly(edits, scene):
    keep = 1 - scene.mask
    for result in edits.values():
        assert torch.equal(result.images * keep, scene.image.expand_as(result.images) * keep)


def test_without_a_prompt_the_colours_do_not_appear_reliably(edits):
    unguided = _colours(edits[""])
    assert unguided.count("red") <= 2 and unguided.count("blue") <= 2, unguided


def test_ranking_puts_a_correct_sample_first(edits):
    for prompt, colour in (("a red circle", "red"), ("a blue circle", "blue")):
        result = edits[prompt]
        best = judge(result.best, result.mask)[0]
        assert best.colour == colour, (prompt, best)
