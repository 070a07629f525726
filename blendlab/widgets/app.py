"""EditorApp: image, mask, prompt, settings, Run/Stop, progress, x̂0 preview, ranked gallery.

Layout: fixed widths (the painter's column, then the controls' :data:`FORM_WIDTH`), so that
at a laptop's width (JupyterLab at 1280 px with its file browser open) nothing shrinks, clips or
wraps mid-widget; on a narrower page the controls move under the painter.

A method toggle (:mod:`~blendlab.widgets.method`) runs Blended Latent Diffusion instead, with the
same mask, prompt, preview, gallery and scrubber.

May import: errors, images, masks, inputs, toyworld, examples, sampler, runner, recorder, notebook, threads, presets,
latent, widgets._common, widgets.painter, widgets.scrubber, widgets.settings, widgets.method.
"""

from __future__ import annotations

import html
import io
import threading
import time

import ipywidgets as W
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import BlendlabError, UnguidedWarning
from ..images import SAMPLE_IMAGES, load_image, sample_image
from ..inputs import prepare
from ..presets import preset_for_size
from ..runner import edit
from ..sampler import EditConfig
from ..images import to_uint8
from ..threads import apply_thread_policy
from ._common import _png, _enlarge, placeholder_png
from .method import MethodChoice, latent_inputs
from .painter import MaskPainter
from .scrubber import StepScrubber
from .settings import FORM_WIDTH, ROW_WIDTH, SETTINGS, EditSettings, default_settings

__all__ = ["EditorApp", "EditSettings", "SETTINGS", "default_settings"]

APP_DISPLAY = 384  #: the painter's canvas in the app, px on its long side (default display_size)
#: What the x̂0 preview shows before the first Run (an empty image widget shows a broken image).
PREVIEW_PLACEHOLDER = placeholder_png(256, 128, "press Run: x0 previews appear here")
NOT_RECORDED = ("<span style='color:#555'>step scrubber: this Run is not recorded; turn on "
                "'record steps' before Run to scrub through its steps</span>")


class _Stopped(Exception):
    """Raised by the app's hook when Stop was pressed."""


class EditorApp:
    """Blended Diffusion in one cell: pick an image, paint a mask, type a prompt, press Run.

    Args:
        models: from :func:`blendlab.load_models` (or a ``NotebookEnv``: its models are loaded).
        image: optional start image (anything :func:`blendlab.load_image` takes), with an empty
            mask; else lesson 01's example (``blendlab.examples.example("insert", models)``, what
            ``env.example("insert")`` gives the lesson) with its mask.
        prompt: initial prompt text.
        preview_every: update the x̂0 preview every k steps (default: about 10 previews per run).
        display_size: the painter's canvas in screen pixels (default :data:`APP_DISPLAY` on the
            long side).
        threads: torch's thread count; default: :func:`blendlab.threads.apply_thread_policy`'s for
            the models' preset (two at most for the small toy and tiny models).
        latent_models: the :class:`blendlab.latent.LatentModels` the "Blended Latent Diffusion"
            method runs (default: the world beside ``models``, loaded on the first BLD Run).

    Settings default to ``EditConfig()`` (the paper's), with ``blendlab.presets.TOY_SETTINGS`` for
    the toy world or ``TINY_SETTINGS`` for tiny models on top; the toy world offers toy scenes.
    Run works in a background thread so the page stays live and Stop can cancel between two steps;
    ``app.run(block=True)`` runs in the caller's thread (scripts, tests).
    ``app.result`` is the :class:`blendlab.EditResult` (a :class:`blendlab.latent.LatentEditResult`
    for BLD); ``app.message`` the status text; ``app.method.value`` "bd" or "bld".
    """

    def __init__(self, models, image=None, *, prompt: str = "", preview_every: int | None = None,
                 display_size=None, threads: int | None = None, latent_models=None):
        if hasattr(models, "load_models") and not hasattr(models, "unet"):
            models = models.load_models()
        self.models = models
        self.threads = apply_thread_policy(models.preset, threads)
        self.size = int(models.image_size)
        self.preview_every = preview_every
        self.result = None
        self.recorder = None
        self.scrubber = None
        self.steps_done = 0
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self._running = False
        self._message = ""

        from ..examples import example

        lesson = example("insert", models)  # lesson 01's image and mask: env.example("insert")
        self._sources: dict[str, torch.Tensor] = {"lesson": lesson.image}
        options = []
        if image is not None:
            self._sources["given"] = load_image(image, size=self.size)
            options.append(("your image", "given"))
        options.append(("lesson 01's " + ("toy scene" if lesson.toy else "photo"), "lesson"))
        if models.is_toy:  # the toy models know coloured shapes, not photos
            options += [(f"toy scene: random #{k}", f"toy:{k}") for k in range(1, 6)]
        options += [(f"sample: {name}", name) for name in SAMPLE_IMAGES]
        full = W.Layout(width=f"{ROW_WIDTH}px")
        self.source = W.Dropdown(options=options, value=options[0][1], description="image",
                                 layout=W.Layout(width="320px"))
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload",
                                   layout=W.Layout(width="140px", margin="2px 2px 2px 12px"))
        self.painter = MaskPainter(self._load_source(self.source.value),
                                   display_size=APP_DISPLAY if display_size is None else display_size,
                                   mask=lesson.mask if image is None else None)
        self.prompt = W.Textarea(value=prompt, description="prompt", rows=2, layout=full,
                                 placeholder="what the masked region should become, e.g. 'a stone wall'",
                                 style={"description_width": "60px"})
        self.settings = EditSettings(tiny=models.is_tiny, preset=models.preset)
        self.method = MethodChoice(latent_models)
        self.record = W.Checkbox(value=False, description="record steps (step scrubber)", indent=False,
                                 layout=full)
        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="steps", layout=full)
        self.status = W.HTML(layout=full)  # a long message wraps inside the column
        self.preview = W.Image(value=PREVIEW_PLACEHOLDER, format="png")
        self.gallery = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.scrubber_box = W.VBox()

        self.source.observe(self._on_source, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.run_button.on_click(lambda _: self.run(block=False))
        self.stop_button.on_click(lambda _: self.stop())

        if models.is_tiny:
            kind = "tiny random-weight models: mechanics only, pictures are noise-like"
        elif models.is_toy:
            kind = ("toy world: models trained here on coloured shapes, the paper's guidance; "
                    "try 'a red circle', 'a blue square', 'a yellow triangle'")
        else:
            kind = "the paper's settings"
        header = W.HTML(f"<b>Blended Diffusion editor</b> · model {html.escape(models.preset)} "
                        f"({models.image_size}×{models.image_size}, {html.escape(kind)})")
        controls = W.VBox([self.prompt, self.method.widget, self.settings.widget, self.record,
                           W.HBox([self.run_button, self.stop_button]), self.progress, self.status],
                          layout=W.Layout(width=f"{FORM_WIDTH}px", margin="0 0 0 16px"))
        self.widget = W.VBox([
            header,
            W.HBox([self.source, self.upload]),
            W.HBox([self.painter.widget, controls], layout=W.Layout(flex_flow="row wrap")),
            W.HTML("<b>x̂0 preview</b> (current prediction of the clean images)"), self.preview,
            W.HTML("<b>results</b>, best CLIP distance first"), self.gallery,
            self.scrubber_box,
        ], layout=W.Layout(align_items="flex-start"))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- status ---------------------------------------------------------------------------------
    @property
    def message(self) -> str:
        """The status text shown in the app."""
        return self._message

    def _say(self, text: str, kind: str = "info") -> None:
        self._message = text
        colour = {"info": "#333", "error": "#b00020", "warn": "#8a5a00"}[kind]
        self.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    @property
    def running(self) -> bool:
        return self._running

    # -- image source -----------------------------------------------------------------------------
    def _load_source(self, key: str) -> torch.Tensor:
        if key in self._sources:
            return self._sources[key]
        if key.startswith("toy:"):
            from ..toyworld import random_scene

            return random_scene(int(key[4:]), size=self.size)[0]
        return sample_image(key, size=self.size)

    def _on_source(self, change) -> None:
        try:
            self.painter.set_image(self._load_source(change["new"]))
        except (BlendlabError, ValueError, OSError) as exc:
            self._say(str(exc), "error")

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        self.load_bytes(bytes(f["content"]), name=f.get("name", "upload"))

    def load_bytes(self, data: bytes, name: str = "upload") -> bool:
        """Use an uploaded file's bytes as the image; False (and a message) if unreadable."""
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                tensor = load_image(im, size=self.size)  # upright by its EXIF orientation
        except UnidentifiedImageError:  # its message is a repr of the in-memory file: not shown
            why = "it is not a picture file (PNG, JPEG, WebP, ...)" if data else "the file is empty"
        except (OSError, SyntaxError):
            why = "the picture in it is damaged or cut short"
        except (BlendlabError, ValueError) as exc:
            why = str(exc)
        else:
            why = ""
        if why:
            self._say(f"could not read {name!r} as an image: {why}. Upload a PNG or JPEG image.", "error")
            return False
        key = f"upload:{name}"
        self._sources[key] = tensor
        if key not in [v for _, v in self.source.options]:
            self.source.options = [*self.source.options, (f"upload: {name}", key)]
        if self.source.value == key:
            self.painter.set_image(tensor)
        else:
            self.source.value = key
        self._say(f"loaded {name}, resized to {self.size}×{self.size}")
        return True

    # -- running --------------------------------------------------------------------------------
    def config(self) -> EditConfig:
        """The EditConfig the Run button would use (raises InputError on bad settings); with an
        empty seed box its seed is None, and each Run draws one (shown under the seed box)."""
        # a real model's own size (256, 512); the small models work at 32 px whatever the setting
        extra = {"model_output_size": self.size} if preset_for_size(self.size) else {}
        prompt = " ".join(self.prompt.value.split())  # the prompt box wraps; line breaks are spaces
        return EditConfig(prompt=prompt, **extra, **self.settings.values())

    def _prepare(self):
        """The Run's inputs through the library's front door (:func:`blendlab.inputs.prepare`): the
        same check and wording as every other door. Its warnings are read as data: an empty prompt is
        refused here, the rest shown in the status line."""
        cfg = self.config()
        if cfg.seed is None:
            cfg = cfg.replace(seed=self.settings.draw_seed())
        inputs = prepare(self.models, self.painter.image, self.painter.mask, cfg).refusing(UnguidedWarning)
        note = "; ".join(w.message for w in inputs.warnings)
        if self.method.value == "bld":  # the same checked mask and prompt, BLD's settings and models
            latent = self.method.models_for(self.models)
            image, mask = latent_inputs(inputs.image, inputs.mask, latent.image_size)
            lcfg = self.method.latent_config(cfg.prompt, cfg.batch_size, cfg.seed)
            from ..latent.sampler import BlendedLatentSampler

            BlendedLatentSampler(latent, image, mask, lcfg)  # checks the mask at latent size: errors before Run
            return (latent, image, mask, lcfg, cfg.iterations_num), note
        return inputs, note

    def run(self, block: bool = False, hooks=()):
        """Start an edit with the current inputs. ``block=True`` runs here and returns the result;
        otherwise a background thread runs it (returned). Bad inputs are reported in the app."""
        if self._running:
            self._say("an edit is already running; press Stop first", "warn")
            return None
        try:
            inputs, note = self._prepare()
        except (BlendlabError, ValueError) as exc:
            self._failed(str(exc))
            return None
        if isinstance(inputs, tuple):  # BLD
            _, _, _, lcfg, iterations = inputs
            steps, batch, what = lcfg.steps_run, lcfg.batch_size, " of Blended Latent Diffusion"
        else:
            steps, batch, iterations, what = inputs.cfg.num_steps, inputs.cfg.batch_size, inputs.cfg.iterations_num, ""
        self._running = True
        self._stop_flag.clear()
        self.result = None
        self.steps_done = 0
        self.progress.max = steps * iterations
        self.progress.value = 0
        self._clear_outputs()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._say(f"running {iterations} × {batch} samples{what}, {steps} steps each"
                  + (f" ({note})" if note else ""))
        args = (inputs, list(hooks))
        if block:
            self._work(*args)
            return self.result
        self._thread = threading.Thread(target=self._work, args=args, daemon=True, name="blendlab-edit")
        self._thread.start()
        return self._thread

    def _clear_outputs(self, failed: bool = False) -> None:
        """A new Run: the last one's pictures and scrubber go, and the box says if one will come
        (``failed``: no run comes, so the box stays empty)."""
        self.result = None
        self.gallery.children = ()
        self.preview.value = PREVIEW_PLACEHOLDER
        self.scrubber = None
        self.scrubber_box.children = () if self.record.value or failed else (W.HTML(NOT_RECORDED),)

    def _failed(self, text: str) -> None:
        """A Run that failed: no result, nothing of the previous run shown under its error."""
        self._clear_outputs(failed=True)
        self._say(text, "error")

    def stop(self) -> None:
        """Ask a running edit to stop after the current step."""
        if self._running:
            self._stop_flag.set()
            self._say("stopping after this step ...", "warn")

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background run to finish."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _hook(self, steps: int):
        every = self.preview_every or max(1, steps // 10)

        def app_hook(state):
            self.steps_done += 1
            self.progress.value = self.steps_done
            if state.index % every == 0 or state.index == state.num_steps - 1:
                self._show_preview(state.pred_x0)
            if self._stop_flag.is_set():
                raise _Stopped()

        return app_hook

    def _show_preview(self, pred_x0: torch.Tensor) -> None:
        strip = torch.cat(list(pred_x0.detach().float().cpu()), dim=-1)  # batch side by side
        im = Image.fromarray(to_uint8(strip))
        self.preview.value = _png(_enlarge(im, 128, side="height"))

    def _edit(self, inputs, hooks):
        """The Run itself: ``blendlab.edit`` on prepared inputs, or ``latent_edit`` for BLD (ranked by
        the app's CLIP)."""
        if isinstance(inputs, tuple):
            from ..latent import latent_edit

            latent, image, mask, lcfg, iterations = inputs
            return latent_edit(latent, image, mask, lcfg, iterations=iterations, ranker=self.models,
                               hooks=[*hooks, self._hook(lcfg.steps_run)], progress=False)
        # prepared inputs are trusted: their warnings were shown in the status line, not given again
        return edit(self.models, inputs, hooks=[*hooks, self._hook(inputs.cfg.num_steps)], progress=False)

    def _work(self, inputs, hooks) -> None:
        image = inputs[1] if isinstance(inputs, tuple) else inputs.image
        t0 = time.perf_counter()
        recorder = None
        if self.record.value:
            from ..recorder import Recorder

            recorder = Recorder(size=min(self.size, 128), max_mb=256)
            hooks = [recorder, *hooks]
        try:
            result = self._edit(inputs, hooks)
        except _Stopped:
            self._say(f"stopped after {self.steps_done} steps", "warn")
        except (BlendlabError, ValueError) as exc:
            self._failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown in the app, never as a traceback
            self._failed(f"the edit failed: {type(exc).__name__}: {exc}")
        else:
            self.result = result
            self._show_gallery(result)
            best = float(result.distances.min())
            self._say(f"done: {len(result.images)} images in {time.perf_counter() - t0:.1f} s; "
                      f"best CLIP distance {best:.4f}")
        finally:
            self.recorder = recorder
            if recorder is not None and recorder.steps:
                self.scrubber = StepScrubber(recorder, init_image=image)
                self.scrubber_box.children = (W.HTML("<b>step scrubber</b>"), self.scrubber.widget)
            self._running = False
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _show_gallery(self, result) -> None:
        cards = []
        for rank, (im, dist) in enumerate(result.ranked):
            img = W.Image(value=_png(_enlarge(im, 128)), format="png")
            cards.append(W.VBox([img, W.HTML(f"#{rank + 1} · distance {dist:.4f}")],
                                layout=W.Layout(margin="0 8px 8px 0")))
        self.gallery.children = tuple(cards)
