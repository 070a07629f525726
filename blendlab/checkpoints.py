"""Checkpoint files: where the published weights come from, and loading them with errors that say
what to do.

- :func:`clip_remote_file`: where OpenAI publishes a CLIP (the URL carries its sha256);
- :func:`load_unet_checkpoint`: a guided-diffusion state dict into a UNet, checked key by key;
- :func:`load_clip`: a CLIP from a local file;
- :func:`toy_weights`: the toy world's shipped weights, checked against the sha256 of their card;
  :func:`toy_card`: that card.

Downloading and caching is :mod:`blendlab.download`'s job.

May import: errors, download.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from .download import RemoteFile, sha256_file
from .errors import CheckpointError, InputError

__all__ = ["TOY_WEIGHTS", "TOY_KINDS", "toy_weights", "toy_card", "load_unet_checkpoint", "clip_remote_file", "load_clip"]


#: Where the toy world's trained weights ship, inside the package.
TOY_WEIGHTS = Path(__file__).resolve().parent / "toyworld" / "weights"
_VERIFIED: set = set()  # (path, mtime, size) of toy weights whose sha256 matched their card


#: The shipped toy weights: "unet" and "clip" (the toy world's models) and "clip_reads" (the toy CLIP
#: fine-tuned on signs, so that it reads: the typographic attack's CLIP), with the script that made each.
TOY_KINDS = {
    "unet": "python -m blendlab.toyworld.train_unet",
    "clip": "python -m blendlab.toyworld.train_clip",
    "clip_reads": "python -m blendlab.toyworld.train_clip --init <toy_clip.pt> --signs 0.5 --sign-scenes 0.5 "
                  "(docs/typography-training.md gives the whole command)",
}


def toy_weights(kind: str) -> Path:
    """Path of the shipped toy-world weights (a kind of :data:`TOY_KINDS`: "unet", "clip",
    "clip_reads"), checked against the sha256 in the JSON card the training script wrote beside
    them. Raises :class:`CheckpointError` when missing or corrupt."""
    if kind not in TOY_KINDS:
        raise InputError(f"unknown toy weights {kind!r}; choose one of {', '.join(TOY_KINDS)}")
    path = TOY_WEIGHTS / f"toy_{kind}.pt"
    card = path.with_suffix(".json")
    retrain = TOY_KINDS[kind]
    if not path.is_file() or not card.is_file():
        raise CheckpointError(
            f"the toy world's {kind} weights are missing ({path}); reinstall blendlab, or train them "
            f"with `{retrain}` (see the README's toy-world section)"
        )
    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _VERIFIED:
        try:
            expected = json.loads(card.read_text())["sha256"]
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"the toy world's card {card} is unreadable ({exc}); reinstall blendlab") from None
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(
                f"the toy world's {kind} weights {path} are corrupt (sha256 {actual[:12]}… but "
                f"its card says {expected[:12]}…); reinstall blendlab, or retrain with `{retrain}`"
            )
        _VERIFIED.add(key)
    return path


def toy_card(kind: str) -> dict:
    """The JSON card of the shipped toy-world weights (a kind of :data:`TOY_KINDS`): how they were made, and
    their ``sha256`` (the weights are checked against it first, as :func:`toy_weights` does)."""
    return json.loads(toy_weights(kind).with_suffix(".json").read_text())


def load_unet_checkpoint(unet: torch.nn.Module, path: str | os.PathLike, preset: str) -> None:
    """Load a guided-diffusion state dict into ``unet``, with errors that say what to do."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {str(exc)[:200]}). "
            "It is probably truncated or corrupt: delete it and run `blendlab download` again, "
            "or download the file by hand."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {path} is not a plain state dict of tensors; guided-diffusion checkpoints are. "
            "Check that you passed the UNet file (e.g. 256x256_diffusion_uncond.pt)."
        )
    expected = unet.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong_shape:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if wrong_shape:
            k = wrong_shape[0]
            details.append(
                f"{len(wrong_shape)} tensors of another shape (e.g. {k}: file "
                f"{tuple(state[k].shape)} vs model {tuple(expected[k].shape)})"
            )
        raise CheckpointError(
            f"checkpoint {path} does not fit the {preset!r} UNet: {'; '.join(details)}. "
            "It belongs to another architecture: use the preset that matches the file "
            "(256x256_diffusion_uncond.pt -> '256-uncond', 512x512_diffusion.pt -> '512-cond')."
        )
    unet.load_state_dict(state)


def clip_remote_file(name: str) -> RemoteFile:
    """Where OpenAI publishes the CLIP ``name`` weights; the URL carries the file's sha256."""
    import clip

    if name not in clip.clip._MODELS:
        raise InputError(
            f"unknown CLIP model {name!r}; choose one of {', '.join(clip.available_models())}"
        )
    url = clip.clip._MODELS[name]
    return RemoteFile(
        filename=os.path.basename(url),
        urls=(url,),
        sha256=url.split("/")[-2],
        description=f"OpenAI CLIP {name}",
    )


def load_clip(path: Path, device: torch.device) -> torch.nn.Module:
    """A CLIP from a local file (OpenAI's TorchScript archive or a plain state dict), with an error
    that says what to do when the file is damaged."""
    import clip

    try:
        with warnings.catch_warnings():  # clip.load tries torch.jit.load first; its FutureWarning
            # ("torch.jit.load is deprecated") is nothing a user of blendlab can act on: only it is hidden
            warnings.filterwarnings("ignore", message=r"`?torch\.jit\.load` is (deprecated|not supported)",
                                    category=FutureWarning)
            model, _ = clip.load(str(path), device=device, jit=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(
            f"CLIP checkpoint {path} could not be loaded ({type(exc).__name__}: {str(exc)[:200]}). "
            "Delete it and download it again (`blendlab download`)."
        ) from None
    return model
