"""The EditorApp's method choice: Blended Diffusion (the paper) or Blended Latent Diffusion (its authors'
faster sequel, :mod:`blendlab.latent`), and what a BLD Run needs — its settings and its models.

:class:`MethodChoice` is the toggle (and, for BLD, the background reconstruction); the latent models
are the world beside the app's (:func:`blendlab.latent.latent_models_for`: the toy latent world beside
the toy world, Stable Diffusion beside the paper's model), loaded on the first BLD Run. A BLD Run
draws ``batch size × iterations`` samples with the app's seed and ranks them with the app's CLIP,
the masked CLIP distance :func:`blendlab.latent.latent_edit` ranks by.

May import: errors, latent, widgets.settings.
"""

from __future__ import annotations

import ipywidgets as W
import torch
import torch.nn.functional as F

from ..latent.config import RECONSTRUCTIONS, LatentConfig
from .settings import ROW_WIDTH

__all__ = ["METHODS", "MethodChoice", "latent_inputs"]

#: (label, value) of the methods the app offers.
METHODS = (("Blended Diffusion", "bd"), ("Blended Latent Diffusion", "bld"))


class MethodChoice:
    """The method toggle; under it, for BLD only, the reconstruction of the background after decoding.

    ``value`` is "bd" or "bld"; :meth:`latent_config` is the :class:`LatentConfig` of a BLD Run.
    ``latent_models`` is handed in or loaded on first use (:meth:`models_for`)."""

    def __init__(self, latent_models=None):
        self.latent_models = latent_models
        self.toggle = W.ToggleButtons(options=METHODS, value="bd", description="method",
                                      style={"description_width": "60px", "button_width": "190px"})
        self.reconstruction = W.Dropdown(options=RECONSTRUCTIONS, value="pixel", description="background",
                                         layout=W.Layout(width="260px"), style={"description_width": "80px"})
        self.note = W.HTML()
        self.latent_box = W.VBox([self.reconstruction, self.note], layout=W.Layout(display="none"))
        self.widget = W.VBox([self.toggle, self.latent_box], layout=W.Layout(width=f"{ROW_WIDTH}px"))
        self.toggle.observe(self._on_method, names="value")

    @property
    def value(self) -> str:
        return self.toggle.value

    @value.setter
    def value(self, method: str) -> None:
        self.toggle.value = method

    def _on_method(self, change) -> None:
        bld = change["new"] == "bld"
        self.latent_box.layout.display = "" if bld else "none"
        self.note.value = ("<span style='color:#555;font-size:90%'>BLD: 50 DDIM steps, a quarter skipped, "
                           "classifier-free guidance 7.5 (the reference's); the steps, λ and views above are "
                           "Blended Diffusion's</span>") if bld else ""

    def models_for(self, models):
        """The latent models beside ``models`` (loaded on the first call)."""
        if self.latent_models is None:
            from ..latent import latent_models_for

            self.latent_models = latent_models_for(models)
        return self.latent_models

    def latent_config(self, prompt: str, batch_size: int, seed: int) -> LatentConfig:
        """The LatentConfig of a BLD Run: the reference's defaults, the app's prompt, batch and seed,
        and the chosen reconstruction (raises InputError for an empty prompt, as every door does)."""
        return LatentConfig(prompt=prompt, batch_size=batch_size, seed=seed, reconstruction=self.reconstruction.value)


def latent_inputs(image: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The app's image and mask at the latent model's side ``size`` (Stable Diffusion works at 512 px,
    the paper's model at 256): the image resized (bilinear, antialiased), the mask by nearest neighbour."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image, mask
    image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)
    return image, F.interpolate(mask.float(), size=(size, size), mode="nearest")
