"""The latent models of Blended Latent Diffusion: a frozen bundle of diffusers components and its loader.

A bundle (:class:`LatentModels`) holds what a Stable Diffusion checkpoint holds, as diffusers names
them: ``vae`` (``AutoencoderKL``: images (B, 3, H, W) in [-1, 1] <-> latents (B, C, H/f, W/f)),
``unet`` (``UNet2DConditionModel``: ε̂ of a latent, conditioned on text embeddings), ``scheduler``
(``DDIMScheduler``) and ``text``, a :class:`PromptEncoder`: anything with ``encode(prompts) -> (B, L, D)``
(for a Stable Diffusion checkpoint :class:`CLIPPromptEncoder`, the pipeline's CLIPTokenizer and
CLIPTextModel; a toy text encoder only needs that one method).

:func:`load_latent_models` reads a bundle with each component's ``from_pretrained``, from a Hub id
("stabilityai/stable-diffusion-2-1-base", "runwayml/stable-diffusion-v1-5") or from a folder of the
same layout (``vae/``, ``unet/``, ``scheduler/``, ``tokenizer/``, ``text_encoder/``), such as the one
:meth:`LatentModels.save_pretrained` writes: the tiny preset of the tests is saved and read back through
this very loader. Weights that are neither local nor downloadable raise one
:class:`~blendlab.errors.WeightsNotFoundError` naming what to download and how.

May import: errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Protocol, Sequence

import torch

from ..errors import InputError, WeightsNotFoundError

__all__ = ["PromptEncoder", "CLIPPromptEncoder", "LatentModels", "load_latent_models", "latent_image_size",
           "COMPONENTS"]

#: The subfolders of a checkpoint, each read by its class's ``from_pretrained``.
COMPONENTS = ("vae", "unet", "scheduler", "tokenizer", "text_encoder")
#: The file each subfolder must hold for its ``from_pretrained`` to read it.
_CONFIG_FILE = {"vae": "config.json", "unet": "config.json", "scheduler": "scheduler_config.json",
                "tokenizer": "tokenizer_config.json", "text_encoder": "config.json"}


class PromptEncoder(Protocol):
    """What the sampler needs of a text encoder: ``encode(prompts)`` -> (len(prompts), L, D) float
    embeddings on the bundle's device (the UNet's ``encoder_hidden_states``, D = its
    ``cross_attention_dim``)."""

    def encode(self, prompts: Sequence[str]) -> torch.Tensor: ...


@dataclasses.dataclass(frozen=True)
class CLIPPromptEncoder:
    """A Stable Diffusion text encoder: CLIP's tokenizer, padded and truncated to its
    ``model_max_length`` (77 for SD), and the last hidden state of its ``CLIPTextModel``."""

    tokenizer: object
    text_encoder: torch.nn.Module

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """(len(prompts), L, D) embeddings of ``prompts`` (a list of strings; "" is the empty prompt)."""
        tokens = self.tokenizer(list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt")
        ids = tokens.input_ids.to(self.text_encoder.device)
        return self.text_encoder(ids)[0]


@dataclasses.dataclass(frozen=True)
class LatentModels:
    """A frozen bundle (every module in eval mode, no gradients): ``vae``, ``unet``, ``scheduler``
    (its configuration; each run builds its own copy to set the steps on), ``text`` (a
    :class:`PromptEncoder`), ``device``, ``dtype`` (of the networks), ``name`` (the source or preset)."""

    vae: torch.nn.Module
    unet: torch.nn.Module
    scheduler: object
    text: PromptEncoder
    device: torch.device
    dtype: torch.dtype = torch.float32
    name: str = ""

    @property
    def scaling_factor(self) -> float:
        """The VAE's latent scale (0.18215 for SD): diffusion runs on ``scaling_factor · E(x)``."""
        return float(self.vae.config.scaling_factor)

    @property
    def vae_scale_factor(self) -> int:
        """How many pixels one latent cell covers along a side (8 for SD)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        """The side the UNet was trained at, in pixels (512 for SD 2.1 base, 32 for the tiny preset)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @torch.no_grad()
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/f, W/f) latents: the mean of the VAE's posterior times
        ``scaling_factor`` (the reference's ``latent_dist.mean * 0.18215``), float32."""
        x = image.to(self.device, self.dtype)
        return (self.vae.encode(x).latent_dist.mean * self.scaling_factor).float()

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) latents -> (B, 3, h·f, w·f) images, float32 clamped to [-1, 1]."""
        z = (latents / self.scaling_factor).to(self.device, self.dtype)
        return self.vae.decode(z).sample.float().clamp(-1, 1)

    def save_pretrained(self, path) -> Path:
        """Write the bundle as a diffusers checkpoint folder (one subfolder per component, as on the
        Hub) that :func:`load_latent_models` reads back. Needs a :class:`CLIPPromptEncoder`."""
        if not isinstance(self.text, CLIPPromptEncoder):
            raise InputError("only a bundle with a CLIPPromptEncoder can be saved as a checkpoint folder")
        path = Path(path)
        parts = {"vae": self.vae, "unet": self.unet, "scheduler": self.scheduler,
                 "tokenizer": self.text.tokenizer, "text_encoder": self.text.text_encoder}
        with _quiet_progress(False):
            for name, part in parts.items():
                part.save_pretrained(path / name)
        return path


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def frozen(module: torch.nn.Module, device, dtype) -> torch.nn.Module:
    """``module`` on ``device`` in ``dtype``, in eval mode, with no parameter requiring gradients."""
    if getattr(module, "dtype", dtype) != dtype:  # diffusers warns on a cast that is not needed
        module = module.to(dtype=dtype)
    return module.to(device=device).eval().requires_grad_(False)


@contextlib.contextmanager
def _quiet_progress(progress: bool):
    """Hide the Hub's and transformers' progress bars unless ``progress``; restore them afterwards."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as tlog

    hub_was, tf_was = are_progress_bars_disabled(), not tlog.is_progress_bar_enabled()
    if not progress:
        disable_progress_bars()
        tlog.disable_progress_bar()
    try:
        yield
    finally:
        if not progress and not hub_was:
            enable_progress_bars()
        if not progress and not tf_was:
            tlog.enable_progress_bar()


def _is_local(source: str) -> bool:
    """A path, not a Hub id: it exists, or is written as a path (absolute, ./, ~, or with more than
    one '/'); a Hub id is "owner/name"."""
    text = str(source)
    return (os.path.exists(os.path.expanduser(text)) or os.path.isabs(text) or text.startswith((".", "~"))
            or text.count("/") > 1 or "\\" in text)


def _download_hint(source: str) -> str:
    return (f"download it once while online (`hf download {source}`, or load_latent_models({source!r}) "
            "with a connection), or pass the path of a folder holding vae/, unet/, scheduler/, "
            "tokenizer/ and text_encoder/")


def _load_component(name: str, source: str, dtype: torch.dtype, *, local_files_only: bool, cache_dir):
    """One component's ``from_pretrained(source, subfolder=name)``: the one call the Hub id and a local
    folder share. Without ``accelerate`` it loads with ``low_cpu_mem_usage=False`` (what diffusers
    falls back to anyway), so diffusers' warning about the missing package is not printed; the Hub's
    deprecation warning about an argument diffusers itself passes (``local_dir_use_symlinks``) is
    filtered here, where blendlab calls it: no user can act on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*", category=UserWarning)
        return _from_pretrained(name, source, dtype, local_files_only=local_files_only, cache_dir=cache_dir)


def _from_pretrained(name: str, source: str, dtype: torch.dtype, *, local_files_only: bool, cache_dir):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from diffusers.utils import is_accelerate_available
    from transformers import CLIPTextModel, CLIPTokenizer

    common = dict(subfolder=name, local_files_only=local_files_only, cache_dir=cache_dir)
    if name == "scheduler":
        return DDIMScheduler.from_pretrained(source, **common)
    if name == "tokenizer":
        return CLIPTokenizer.from_pretrained(source, **common)
    if name == "text_encoder":
        return CLIPTextModel.from_pretrained(source, dtype=dtype, **common)
    cls = AutoencoderKL if name == "vae" else UNet2DConditionModel
    return cls.from_pretrained(source, torch_dtype=dtype, low_cpu_mem_usage=is_accelerate_available(), **common)


def load_latent_models(source: str | os.PathLike, device: str | torch.device | None = None,
                       dtype: torch.dtype | None = None, *, progress: bool = True,
                       local_files_only: bool = False, cache_dir: str | os.PathLike | None = None) -> LatentModels:
    """Load a latent diffusion checkpoint as a frozen :class:`LatentModels`.

    Args:
        source: a Hub id ("stabilityai/stable-diffusion-2-1-base", "runwayml/stable-diffusion-v1-5")
            or a local folder of the same layout (:meth:`LatentModels.save_pretrained` writes one).
        device: default CUDA when present, else the CPU.
        dtype: default float16 on CUDA, float32 on the CPU.
        progress: a bar over the five components, and the Hub's download bars (tqdm.auto: a widget in
            notebooks).
        local_files_only: never touch the network (the cache or the folder only).
        cache_dir: the Hub cache to use (default: huggingface_hub's, ``$HF_HOME``).

    Raises :class:`~blendlab.errors.WeightsNotFoundError` (one sentence, no chained traceback) when a
    component is neither in the folder nor downloadable.
    """
    from tqdm.auto import tqdm

    device = default_device() if device is None else torch.device(device)
    dtype = (torch.float16 if device.type == "cuda" else torch.float32) if dtype is None else dtype
    source = str(source)
    local = _is_local(source)
    if local:
        folder = Path(source).expanduser()
        missing = [f"{n}/{_CONFIG_FILE[n]}" for n in COMPONENTS if not (folder / n / _CONFIG_FILE[n]).is_file()]
        if missing:
            what = "does not exist" if not folder.exists() else f"lacks {', '.join(missing)}"
            raise WeightsNotFoundError(f"the latent model folder {folder} {what}; write one with "
                                       "LatentModels.save_pretrained(path), or load a Hub id such as "
                                       "'stabilityai/stable-diffusion-2-1-base'")
        source = str(folder)
    parts = {}
    with _quiet_progress(progress):
        for name in tqdm(COMPONENTS, desc=f"loading {source}", disable=not progress, leave=False):
            try:
                parts[name] = _load_component(name, source, dtype, local_files_only=local_files_only,
                                              cache_dir=cache_dir)
            except (OSError, ValueError) as exc:  # diffusers/transformers: OSError; a bad id: ValueError
                if local:
                    raise WeightsNotFoundError(f"{source}/{name} could not be read ({str(exc).splitlines()[0]}); "
                                               "write the folder again with LatentModels.save_pretrained") from None
                offline = "offline only" if local_files_only else "neither cached nor downloadable (offline?)"
                raise WeightsNotFoundError(f"the {name} of {source!r} is {offline}: "
                                           f"{_download_hint(source)}") from None
    text = CLIPPromptEncoder(parts["tokenizer"], frozen(parts["text_encoder"], device, dtype))
    return LatentModels(vae=frozen(parts["vae"], device, dtype), unet=frozen(parts["unet"], device, dtype),
                        scheduler=parts["scheduler"], text=text, device=device, dtype=dtype, name=source)


def _config_json(source: str, name: str, *, local_files_only: bool, cache_dir) -> dict:
    import json

    if _is_local(source):
        path = Path(source).expanduser() / name / "config.json"
        if not path.is_file():
            raise WeightsNotFoundError(f"the latent model folder {Path(source).expanduser()} lacks {name}/config.json; "
                                       "write one with LatentModels.save_pretrained(path)")
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(source, f"{name}/config.json", local_files_only=local_files_only,
                                   cache_dir=cache_dir)
        except Exception:  # noqa: BLE001 - the Hub raises a dozen kinds (offline, gated, no such repo)
            raise WeightsNotFoundError(f"the {name} configuration of {source!r} is neither cached nor "
                                       f"downloadable (offline, or no such model?): {_download_hint(source)}") from None
    return json.loads(Path(path).read_text())


def latent_image_size(source: str | os.PathLike, *, local_files_only: bool = False, cache_dir=None) -> tuple[int, int]:
    """``(image side, pixels per latent cell)`` of a latent model, read from its UNet's and VAE's
    ``config.json`` alone (a folder, or two small files from the Hub), so inputs can be checked at the
    model's size before its weights load: (512, 8) for Stable Diffusion 2.1 base."""
    unet = _config_json(str(source), "unet", local_files_only=local_files_only, cache_dir=cache_dir)
    vae = _config_json(str(source), "vae", local_files_only=local_files_only, cache_dir=cache_dir)
    f = 2 ** (len(vae["block_out_channels"]) - 1)
    size = unet["sample_size"]
    return int(size[0] if isinstance(size, (list, tuple)) else size) * f, f
