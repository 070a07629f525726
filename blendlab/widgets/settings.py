"""The EditorApp's settings form: one row per EditConfig field, at a fixed width; the seed box.

May import: errors, sampler, presets.
"""

from __future__ import annotations

import secrets

import ipywidgets as W

from ..errors import InputError
from ..sampler import EditConfig

SETTINGS = ("skip_timesteps", "timestep_respacing", "aug_num", "clip_guidance_lambda", "range_lambda",
            "batch_size", "iterations_num", "seed", "ddim", "invert_mask", "local_clip_guided_diffusion")

#: Width of the settings column (and of the app's controls) in screen pixels; a row in it is
#: ROW_WIDTH wide, plus the 2 px margin ipywidgets gives each widget on either side.
FORM_WIDTH = 400
ROW_WIDTH = FORM_WIDTH - 4
SEED_EMPTY = "random: a new seed each run"


def default_settings(tiny: bool = False, preset: str | None = None) -> dict:
    """EditConfig's defaults for :data:`SETTINGS`, with the preset's quick settings on top
    (``blendlab.presets.settings_for``: TINY_SETTINGS for tiny, TOY_SETTINGS for the toy world)."""
    from ..presets import settings_for

    base = EditConfig()
    values = {name: getattr(base, name) for name in SETTINGS}
    quick = settings_for(preset or ("tiny" if tiny else ""))
    values.update({k: v for k, v in quick.items() if k in values})
    return values


class EditSettings:
    """Form widgets for :data:`SETTINGS`; ``values()`` parses them (``InputError`` on bad input).

    The seed box holds the seed a Run uses; left empty, each Run draws one (:meth:`draw_seed`), and
    the note under the box names it, so that run can be repeated by typing it in.
    """

    def __init__(self, tiny: bool = False, preset: str | None = None):
        self.defaults = default_settings(tiny, preset)
        style = {"description_width": "170px"}
        row = W.Layout(width=f"{ROW_WIDTH}px")
        self.controls: dict[str, W.Widget] = {}
        for name, value in self.defaults.items():
            label = name.replace("_", " ")
            if isinstance(value, bool):
                w = W.Checkbox(value=value, description=label, style=style, indent=False, layout=row)
            elif name == "seed":
                w = W.Text(value="" if value is None else str(value), description="seed",
                           placeholder=SEED_EMPTY, style=style, layout=row,
                           tooltip="the seed of the random numbers; the same seed repeats a run")
            elif isinstance(value, int):
                w = W.IntText(value=value, description=label, style=style, layout=row)
            elif isinstance(value, float):
                w = W.FloatText(value=value, description=label, style=style, layout=row)
            else:
                w = W.Text(value=str(value), description=label, style=style, layout=row)
            self.controls[name] = w
        #: what the last Run used when the seed box was empty (None: the box held its seed)
        self.last_random_seed: int | None = None
        indent = 180  # margin, description and its gap: the note starts under the box
        self.seed_note = W.HTML(layout=W.Layout(width=f"{ROW_WIDTH - indent}px",
                                                margin=f"0 2px 0 {indent}px"))
        children = []
        for name, w in self.controls.items():
            children += [w, self.seed_note] if name == "seed" else [w]
        self.widget = W.VBox(children, layout=W.Layout(width=f"{FORM_WIDTH}px"))
        self.controls["seed"].observe(lambda _: self._note(), names="value")
        self._note()

    def values(self) -> dict:
        out = {}
        for name, w in self.controls.items():
            v = w.value
            if name == "seed":
                text = str(v).strip()
                if text == "":
                    v = None
                else:
                    try:
                        v = int(text)
                    except ValueError:
                        raise InputError(f"seed {text!r} is not a whole number; type one, or leave it "
                                         "empty for a random seed") from None
            out[name] = v
        return out

    def set(self, **values) -> None:
        for name, v in values.items():
            if name not in self.controls:
                raise InputError(f"{name!r} is not an app setting; settings: {', '.join(SETTINGS)}")
            self.controls[name].value = ("" if v is None else str(v)) if name == "seed" else v

    def draw_seed(self) -> int:
        """A random seed for a Run with an empty seed box; the note under the box shows it."""
        self.last_random_seed = secrets.randbelow(2**31)
        self._note()
        return self.last_random_seed

    def _note(self) -> None:
        if str(self.controls["seed"].value).strip():
            text = ""  # the box says it all
        elif self.last_random_seed is None:
            text = "each Run draws a seed and shows it here"
        else:
            text = f"the last Run drew seed {self.last_random_seed}: type it in to repeat that run"
        self.seed_note.value = f"<span style='color:#555;font-size:90%'>{text}</span>" if text else ""
