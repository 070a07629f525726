"""The one front door of an edit: :func:`prepare` checks everything an edit takes, once, before any
work (and, given a preset's name, before any model loads), and returns :class:`EditInputs`.

diffusers checks its inputs once at the top of ``__call__`` (``check_inputs``) and trusts them below;
blendlab does the same. ``blendlab edit``, the EditorApp, a sweep and :func:`blendlab.edit` all call
:func:`prepare`, so one mistake gets one wording whichever door it came through, and the sampler
(:meth:`blendlab.sampler.BlendedSampler.from_inputs`) takes what it returns without checking again.

What is checked: the image (a ``(1, 3, S, S)`` float tensor in [-1, 1] at the model's size S, or a
file, PIL image or array loaded at that size), the mask (a tensor, or a file loaded at that size after
:func:`blendlab.masks.mask_fit` judged it against the image's own size; None: the whole image), the
mask's batch against ``cfg.batch_size``, ``cfg.invert_mask`` leaving something to edit, and the prompt
against the guidance. What is only worth saying comes back *as data*, :class:`InputWarning` records in
``EditInputs.warnings``: the caller decides to ``warnings.warn`` them (:meth:`EditInputs.warn`, what
``bl.edit`` does), to show them (the EditorApp's status line) or to refuse them (a sweep row with an
empty prompt).

May import: errors, config, images, masks, presets.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import torch

from .config import EditConfig
from .errors import FullMaskWarning, InputError, MaskResizedWarning, UnguidedWarning
from .images import check_image, file_size, load_image, own_size
from .masks import FULL_MASK, edit_mask, full_mask, load_mask, mask_fit
from .presets import image_size

__all__ = ["InputWarning", "EditInputs", "prepare", "UNGUIDED"]

#: What an edit says of an empty prompt with CLIP guidance on (a :class:`~blendlab.errors.UnguidedWarning`
#: where the edit runs anyway, an error where a door refuses it).
UNGUIDED = ("the prompt is empty, so this edit runs unguided: no CLIP guidance, the diffusion model alone "
            "fills the mask. Give a prompt, or pass clip_guidance_lambda=0 to run unguided without "
            "this warning")


@dataclasses.dataclass(frozen=True)
class InputWarning:
    """Something :func:`prepare` found worth saying, not worth refusing: ``category`` (a
    :class:`~blendlab.errors.BlendlabWarning` subclass: MaskResizedWarning, FullMaskWarning,
    UnguidedWarning) and ``message`` (what it is and what to do)."""

    category: type
    message: str

    def warn(self, stacklevel: int = 2) -> None:
        """Give it as a Python warning (``stacklevel`` as :func:`warnings.warn`'s, from the caller)."""
        warnings.warn(self.message, self.category, stacklevel=stacklevel + 1)


@dataclasses.dataclass(frozen=True)
class EditInputs:
    """What :func:`prepare` checked: everything an edit needs besides the models, to be trusted.

    Attributes:
        image: (1, 3, S, S) float in [-1, 1] at the model's size S (the caller's tensor itself when
            one was given: never modified).
        mask: (1 or B, 1, S, S) in {0, 1}, 1 = edit, as given or loaded (before ``invert_mask``).
        edit_mask: the mask the edit blends with (``mask``, inverted when ``cfg.invert_mask``).
        cfg: the :class:`EditConfig`.  preset: the model preset's name (None if the models had none).
        size: S.  warnings: the :class:`InputWarning` records, in the order they were found.
    """

    image: torch.Tensor
    mask: torch.Tensor
    edit_mask: torch.Tensor
    cfg: EditConfig
    preset: str | None
    size: int
    warnings: tuple[InputWarning, ...] = ()

    def warn(self, stacklevel: int = 2) -> None:
        """Give every record as a Python warning, once each (``stacklevel`` from the caller)."""
        for record in self.warnings:
            record.warn(stacklevel + 1)

    def of(self, category: type) -> tuple[InputWarning, ...]:
        """The records of ``category`` (or a subclass of it)."""
        return tuple(w for w in self.warnings if issubclass(w.category, category))

    def refusing(self, category: type) -> "EditInputs":
        """These inputs, unless a record of ``category`` is among their warnings: then an
        :class:`~blendlab.errors.InputError` in that record's words (a door that refuses what
        ``bl.edit`` only warns of, e.g. an empty prompt with guidance on)."""
        refused = self.of(category)
        if refused:
            raise InputError(refused[0].message)
        return self

    def to(self, device) -> "EditInputs":
        """These inputs with ``image``, ``mask`` and ``edit_mask`` as float32 on ``device`` (the one
        place an edit moves them: ``bl.edit`` once per edit, the sampler when it was not done); the
        same object when they are there already."""
        moved = {name: getattr(self, name).to(device=device, dtype=torch.float32)
                 for name in ("image", "mask", "edit_mask")}
        if all(moved[name] is getattr(self, name) for name in moved):
            return self
        return dataclasses.replace(self, **moved)

    def check_for(self, models) -> "EditInputs":
        """These inputs, after checking that they were prepared at ``models.image_size``."""
        if int(models.image_size) != self.size:
            raise InputError(f"these inputs were prepared at {self.size}x{self.size}, but the models work at "
                             f"{models.image_size}x{models.image_size}; prepare them with these models: "
                             "blendlab.inputs.prepare(models, image, mask, cfg)")
        return self


def _preset_and_size(models) -> tuple[str | None, int]:
    """``(preset, S)`` of a model bundle, or of a preset's name (nothing is loaded)."""
    if isinstance(models, str):
        return models, image_size(models)
    size = getattr(models, "image_size", None)
    if size is None:
        raise InputError(f"models must be what blendlab.load_models returns, or a preset's name; got "
                         f"{type(models).__name__}")
    return getattr(models, "preset", None), int(size)


def _is_path(src) -> bool:
    return isinstance(src, (str, os.PathLike))


def _image(image, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The image at the model's size and ``(width, height)`` of the image as given (what a mask
    file is judged against)."""
    if isinstance(image, torch.Tensor):
        check_image(image, size=size)  # a tensor is the caller's own: checked, never converted or resized
        return image, (int(image.shape[-1]), int(image.shape[-2]))
    loaded = load_image(image, size=size)  # decoded once; a bad image is refused here
    return loaded, own_size(image)  # from the header, the EXIF tag or the shape: no second decode


def _mask(mask, size: int, image_wh: tuple[int, int], found: list) -> torch.Tensor:
    if mask is None:
        return full_mask(size)
    if isinstance(mask, torch.Tensor):
        return mask  # the caller's own: edit_mask judges it as it is
    if _is_path(mask):
        mask_wh, native = file_size(mask), mask
    else:  # PIL, arrays: binarised once at their own size, then resized as a tensor (no second decode)
        native = load_mask(mask)
        mask_wh = (int(native.shape[-1]), int(native.shape[-2]))
    note = mask_fit(mask_wh, image_wh)
    if note is not None:
        found.append(InputWarning(MaskResizedWarning, note))
    return load_mask(native, size=size)


def prepare(models, image, mask, cfg: EditConfig) -> EditInputs:
    """Check an edit's inputs once and return them as :class:`EditInputs`.

    Args:
        models: a :class:`blendlab.models.Models`, or a preset's name (e.g. ``"toy"``) to check
            before any model loads (its size is read from :data:`blendlab.presets.PRESETS`).
        image: a (1, 3, S, S) float tensor in [-1, 1] at the model's size S, or a path, PIL image or
            array (loaded at S, stretched as the reference does).
        mask: a (1 or B, 1, S, S) tensor in {0, 1} (1 = edit), a path, PIL image or array (judged
            against the image's own size, then loaded at S), or None for the whole image.
        cfg: the :class:`EditConfig`.

    Raises :class:`~blendlab.errors.InputError` (or FileNotFoundError) naming the problem and the fix;
    nothing given is modified.
    """
    if not isinstance(cfg, EditConfig):
        raise InputError(f"cfg must be an EditConfig, got {type(cfg).__name__}; make one with "
                         "blendlab.EditConfig(prompt=...)")
    preset, size = _preset_and_size(models)
    found: list[InputWarning] = []
    image, image_wh = _image(image, size)
    mask = _mask(mask, size, image_wh, found)
    used = edit_mask(mask, image, invert=cfg.invert_mask, batch_size=cfg.batch_size, warn_full=False)
    if torch.all(used > 0):
        found.append(InputWarning(FullMaskWarning, FULL_MASK))
    if cfg.prompt == "" and cfg.clip_guidance_lambda:
        found.append(InputWarning(UnguidedWarning, UNGUIDED))
    return EditInputs(image=image, mask=mask, edit_mask=used, cfg=cfg, preset=preset, size=size,
                      warnings=tuple(found))
