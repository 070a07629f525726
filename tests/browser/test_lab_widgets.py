"""End to end: a person paints a mask and scrubs steps in JupyterLab, in headless Chromium.

The test writes a notebook into a temporary JupyterLab root, opens it in Debian's Chromium, runs
all cells from the Run menu, then

1. drags the mouse (real press/move/release events) along a horizontal line on the MaskPainter's
   canvas and checks *in the kernel* that ``painter.mask`` holds exactly the stroke the brush makes
   there — the expected pixels are computed from the canvas's on-screen box and the
   display-to-mask scale — and that the overlay appeared on screen where the stroke went;
2. presses ArrowRight on the StepScrubber's slider and then drags its handle to the end, and checks
   the info line ("step 0/10" -> "step 1/10" -> "step 9/10": steps count from 0), the picture, and
   the kernel's ``scrubber.slider.value``;
3. in compare mode (``StepScrubber(rec, compare=rec_b, labels=("blend", "no blend"))``: the same edit
   without blending) presses ArrowRight on its slider and drags it to the end, and checks that the
   info names both runs at the new step, that all three panes (blend, no blend, |a − b|) changed on
   screen, and the kernel's slider value and difference.

Screenshots go to $BLENDLAB_BROWSER_ARTIFACTS (default: a pytest tmp dir); their paths are printed
at the end of the run. See docs/browser-test.md.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

MASK = 32  # tiny preset: 32x32 images and masks
DISPLAY = 256  # canvas size in screen pixels
BRUSH = 3  # brush diameter in mask pixels (odd: centred on the pixel under the mouse)
# the stroke, in canvas pixels: from (x0, y) to (x1, y); chosen at mask-pixel centres
STROKE = dict(x0=52.0, x1=204.0, y=100.0)

CELLS = [
    # 0: the mask painter
    """\
import json, os
import blendlab as bl
import blendlab.widgets
assert os.environ.get("BLENDLAB_MODELS") == "tiny", os.environ.get("BLENDLAB_MODELS")
models = bl.load_models("tiny", device="cpu")
image = bl.sample_image("grace_hopper", size=models.image_size)
painter = bl.widgets.MaskPainter(image, display_size=%(display)d, brush=%(brush)d)
painter""",
    # 1: a tiny recorded edit and the step scrubber
    """\
rec = bl.Recorder()
cfg = bl.EditConfig(prompt="rock", timestep_respacing="20", skip_timesteps=10, batch_size=2,
                    iterations_num=1, aug_num=2, seed=0)
result = bl.edit(models, image, bl.box_mask(models.image_size, (0.25, 0.25, 0.75, 0.75)), cfg,
                 hooks=[rec], progress=False)
scrubber = bl.widgets.StepScrubber(rec, init_image=image)
scrubber""",
    # 2: the same edit without blending, compared step by step with the first
    """\
rec_b = bl.Recorder()
bl.edit(models, image, bl.box_mask(models.image_size, (0.25, 0.25, 0.75, 0.75)),
        cfg.replace(local_clip_guided_diffusion=True), hooks=[rec_b], progress=False)
compare = bl.widgets.StepScrubber(rec, compare=rec_b, labels=("blend", "no blend"), display_size=128)
compare""",
    # 3: the probe: what the kernel holds, as one JSON line
    """\
_probe_run = globals().get("_probe_run", 0) + 1
_m = painter.mask[0, 0]
_nz = _m.nonzero()
print("PROBE " + json.dumps({
    "run": _probe_run,
    "shape": list(_m.shape),
    "pixels": int(_m.sum()),
    "rows": [int(_nz[:, 0].min()), int(_nz[:, 0].max())] if len(_nz) else None,
    "cols": [int(_nz[:, 1].min()), int(_nz[:, 1].max())] if len(_nz) else None,
    "brush": int(painter.size_slider.value),
    "display": list(painter.display_size),
    "status": painter.status.value,
    "slider": int(scrubber.slider.value),
    "slider_max": int(scrubber.slider.max),
    "info": scrubber.info,
    "compare_slider": int(compare.slider.value),
    "compare_info": compare.info,
    "compare_steps": [compare.pair[0].index, compare.pair[1].index],
    "compare_difference": list(compare.difference),
}))""",
]


PROBE = len(CELLS) - 1  # the probe is the last cell


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src % {"display": DISPLAY, "brush": BRUSH}) for src in CELLS]
    nbformat.write(nb, str(path))


def expected_stroke(box: dict, page_x0: float, page_x1: float, page_y: float):
    """The mask pixels the brush paints for a drag between two page points, from the canvas box.

    ipycanvas maps a page point to canvas pixels with the element's bounding box; MaskPainter maps
    canvas pixels to mask units by mask_size / display_size; an odd brush of diameter d covers the
    pixels within d/2 of the pixel centre under the mouse (a d x d square for d = 3), swept along x.
    """
    def canvas(px, py):
        return (px - box["x"]) * DISPLAY / box["width"], (py - box["y"]) * DISPLAY / box["height"]

    (cx0, cy), (cx1, _) = canvas(page_x0, page_y), canvas(page_x1, page_y)
    scale = MASK / DISPLAY
    col0, col1, row = math.floor(cx0 * scale), math.floor(cx1 * scale), math.floor(cy * scale)
    h = BRUSH // 2
    rows = [max(0, row - h), min(MASK - 1, row + h)]
    cols = [max(0, min(col0, col1) - h), min(MASK - 1, max(col0, col1) + h)]
    return rows, cols


def _png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


class Session:
    """The steps a person takes in JupyterLab, each bounded by the test's time budget."""

    def __init__(self, page, artifacts: Path, deadline: float):
        self.page, self.artifacts, self.deadline = page, artifacts, deadline
        self.shots: list[Path] = []

    def ms(self, cap: float = 60.0) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            pytest.fail("the browser test ran past its time budget (see TOTAL_BUDGET in conftest.py)",
                        pytrace=False)
        return 1000.0 * min(cap, left)

    def wait_kernel_connected(self, lab) -> None:
        """Until the page's kernel is idle with the page's websocket attached (server view), and
        the status bar says so (page view). Running cells before that is silently lost."""
        while True:
            try:
                sessions = [x for x in lab.api("/api/sessions") if x.get("path", "").endswith("test.ipynb")]
            except OSError:  # URLError and timeouts: ask again
                sessions = []
            kernel = sessions[0]["kernel"] if sessions else {}
            if kernel.get("execution_state") == "idle" and kernel.get("connections", 0) >= 1:
                break
            if self.ms() < 500:
                pytest.fail(f"the notebook's kernel did not become idle and connected: {sessions}",
                            pytrace=False)
            time.sleep(0.25)
        from playwright.sync_api import expect

        expect(self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
               ).to_have_count(1, timeout=self.ms(60))

    def cell(self, i: int):
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(i)

    def output(self, i: int):
        return self.cell(i).locator(".jp-OutputArea")

    def shot(self, name: str, locator=None) -> Path:
        path = self.artifacts / name
        if locator is None:
            self.page.screenshot(path=str(path))
        else:
            locator.screenshot(path=str(path), timeout=self.ms(20))
        self.shots.append(path)
        return path

    def wait_text(self, locator, pattern: str, cap: float = 60.0) -> str:
        """Wait until the locator's text matches the regex; return the text."""
        from playwright.sync_api import expect

        expect(locator).to_contain_text(re.compile(pattern), timeout=self.ms(cap))
        return locator.inner_text()

    def drag_slider_to_end(self, output) -> None:
        """Press the mouse on the slider handle in ``output``, drag past the track's right end, release."""
        handle = output.locator(".widget-slider .noUi-handle")
        handle.scroll_into_view_if_needed(timeout=self.ms(10))  # running the probe scrolls the page
        hb = handle.bounding_box()
        track = output.locator(".widget-slider .noUi-target").bounding_box()
        assert hb and track and 0 <= hb["y"] < self.page.viewport_size["height"], (hb, track)
        self.page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
        self.page.mouse.down()
        self.page.mouse.move(track["x"] + track["width"] + 60, hb["y"] + hb["height"] / 2, steps=15)
        self.page.mouse.up()

    def probe(self, run: int) -> dict:
        """(Re-)run the probe cell (click into it, Ctrl+Enter) and read its JSON line from the page."""
        if run > 1:
            self.cell(PROBE).locator(".jp-InputArea-editor").click(timeout=self.ms(20))
            self.page.keyboard.press("Control+Enter")
        text = self.wait_text(self.output(PROBE), rf'PROBE \{{"run": {run},', cap=60)
        line = next(ln for ln in text.splitlines() if ln.startswith("PROBE "))
        return json.loads(line[len("PROBE "):])


def drive(lab, browser, s: Session, run, failure_shot: str) -> None:
    """``run(lab, page, s)``; if it fails, save ``failure_shot`` and print the browser console and the
    JupyterLab log before re-raising. Then check the page reached no host but 127.0.0.1."""
    try:
        run(lab, browser.page, s)
    except BaseException:
        try:
            s.shot(failure_shot)
        except Exception:  # noqa: BLE001 - the page may be gone
            pass
        print("browser console (last 40):\n" + "\n".join(browser.console[-40:]))
        print("JupyterLab log (tail):\n" + lab.log_tail())
        raise
    assert not browser.foreign_requests, (
        f"the page tried to reach hosts other than 127.0.0.1: {browser.foreign_requests[:10]}")


def test_paint_mask_and_scrub_steps_in_jupyterlab(lab, browser, artifacts, record_shots):
    page = browser.page
    write_notebook(lab.root / "test.ipynb")
    s = Session(page, artifacts, lab.deadline)  # the whole test, server start included: < 3 min
    record_shots(s.shots)
    drive(lab, browser, s, _run, "failure-page.png")


def _run(lab, page, s: Session) -> None:
    from playwright.sync_api import expect

    # -- open the notebook and run every cell from the Run menu --------------------------------
    page.goto(f"{lab.url}/lab/tree/test.ipynb?token={lab.token}", timeout=s.ms(60))
    expect(page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")).to_have_count(len(CELLS), timeout=s.ms(60))
    s.wait_kernel_connected(lab)
    s.cell(0).click(timeout=s.ms(10))
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click(timeout=s.ms(10))
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=s.ms(10))
    # the first cell is queued or running at once (JupyterLab drops executions without a kernel)
    expect(s.cell(0).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=s.ms(10))

    painter_out, scrubber_out = s.output(0), s.output(1)
    canvases = painter_out.locator("canvas")
    expect(canvases.first).to_be_visible(timeout=s.ms(90))
    s.wait_text(painter_out, r"mask: 0 of 1024 pixels", cap=30)
    info = scrubber_out.locator(".widget-html", has_text=re.compile(r"step \d+/\d+"))
    s.wait_text(info, r"step 0/10 ·", cap=60)
    before = s.probe(1)
    assert before["pixels"] == 0 and before["shape"] == [MASK, MASK], before
    assert before["brush"] == BRUSH and before["display"] == [DISPLAY, DISPLAY], before
    assert before["slider"] == 0 and before["info"].startswith("step 0/10"), before
    s.shot("01-lab-after-run-all.png")

    # -- paint: a real mouse drag on the top canvas layer -------------------------------------
    top = canvases.last  # the layer the browser's events reach (ipycanvas MultiCanvas)
    top.scroll_into_view_if_needed(timeout=s.ms(10))
    box = top.bounding_box()
    assert box and abs(box["width"] - DISPLAY) < 1 and abs(box["height"] - DISPLAY) < 1, (
        f"the painter's canvas is {box} on screen, expected {DISPLAY}x{DISPLAY} px")
    canvas_before = _png_array(top.screenshot(timeout=s.ms(20)))
    s.shot("02-painter-before.png", painter_out)

    px0 = box["x"] + STROKE["x0"] * box["width"] / DISPLAY
    px1 = box["x"] + STROKE["x1"] * box["width"] / DISPLAY
    py = box["y"] + STROKE["y"] * box["height"] / DISPLAY
    # the element under the start point must be the canvas itself (no overlay steals the events)
    hit = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y);"
                        " return e ? e.tagName : null; }", [px0, py])
    assert hit == "CANVAS", f"the element under the stroke is {hit}, not the canvas"
    page.mouse.move(px0, py)
    page.mouse.down()
    page.mouse.move((px0 + px1) / 2, py, steps=12)
    page.mouse.move(px1, py, steps=12)
    page.mouse.up()

    # the painter's status line (updated by the kernel when the stroke ends) shows a new count
    s.wait_text(painter_out, r"mask: [1-9]\d* of 1024 pixels", cap=30)
    rows, cols = expected_stroke(box, px0, px1, py)
    after = s.probe(2)
    expected_pixels = (rows[1] - rows[0] + 1) * (cols[1] - cols[0] + 1)
    assert (after["rows"], after["cols"], after["pixels"]) == (rows, cols, expected_pixels), (
        f"kernel mask after the drag: rows {after['rows']}, cols {after['cols']}, {after['pixels']} px; "
        f"expected the {BRUSH}-px brush band rows {rows}, cols {cols} ({expected_pixels} px)")

    # ... and the overlay is on screen exactly there (the kernel drew it back onto the canvas)
    page.mouse.move(box["x"] + box["width"] + 40, py)  # move away: no hover effects in the shot
    canvas_after = _png_array(top.screenshot(timeout=s.ms(20)))
    s.shot("03-painter-after.png", painter_out)
    k = DISPLAY // MASK
    diff = np.abs(canvas_after - canvas_before).sum(-1)
    inside = diff[rows[0] * k:(rows[1] + 1) * k, cols[0] * k:(cols[1] + 1) * k]
    outside = diff.copy()
    outside[max(0, rows[0] * k - 2):(rows[1] + 1) * k + 2, max(0, cols[0] * k - 2):(cols[1] + 1) * k + 2] = 0
    assert (inside > 0).mean() > 0.95, "the painted band does not show the overlay on screen"
    assert (outside > 0).mean() < 0.001, "pixels outside the painted band changed on screen"
    red_gain = (canvas_after[..., 0] - canvas_after[..., 1:].mean(-1)) - \
               (canvas_before[..., 0] - canvas_before[..., 1:].mean(-1))
    assert red_gain[rows[0] * k:(rows[1] + 1) * k, cols[0] * k:(cols[1] + 1) * k].mean() > 30, \
        "the overlay on the painted band is not the painter's red"

    # -- scrub: keyboard on the slider, then a mouse drag of its handle -----------------------
    image = scrubber_out.locator(".widget-image")
    handle = scrubber_out.locator(".widget-slider .noUi-handle")
    expect(handle).to_have_count(1, timeout=s.ms(10))
    handle.scroll_into_view_if_needed(timeout=s.ms(10))
    img0 = _png_array(image.screenshot(timeout=s.ms(20)))
    s.shot("04-scrubber-before.png", scrubber_out)

    handle.focus(timeout=s.ms(10))
    page.keyboard.press("ArrowRight")
    s.wait_text(info, r"step 1/10 ·", cap=30)
    expect(image).to_be_visible(timeout=s.ms(10))
    page.wait_for_timeout(300)  # let the new picture decode before the screenshot
    img1 = _png_array(image.screenshot(timeout=s.ms(20)))
    s.shot("05-scrubber-after-arrow.png", scrubber_out)
    assert img1.shape == img0.shape and np.abs(img1 - img0).sum(-1).mean() > 1.0, \
        "the scrubber's picture did not change with the step"
    state = s.probe(3)
    assert state["slider"] == 1 and state["info"].startswith("step 1/10"), state

    s.drag_slider_to_end(scrubber_out)
    s.wait_text(info, r"step 9/10 ·", cap=30)
    page.wait_for_timeout(300)
    img2 = _png_array(image.screenshot(timeout=s.ms(20)))
    s.shot("06-scrubber-after-drag.png", scrubber_out)
    assert np.abs(img2 - img1).sum(-1).mean() > 1.0, "the scrubber's picture did not change with the drag"
    state = s.probe(4)
    assert state["slider"] == state["slider_max"] == 9 and state["info"].startswith("step 9/10"), state
    assert state["pixels"] == expected_pixels, "scrubbing changed the painter's mask"

    # -- compare mode: the same slider moves both runs and their difference --------------------
    compare_out = s.output(2)
    c_info = compare_out.locator(".widget-html", has_text=re.compile(r"blend: step \d+/\d+"))
    s.wait_text(c_info, r"^blend: step 0/10 ·.*no blend: step 0/10 ·", cap=30)
    panes = compare_out.locator(".widget-image")  # blend, no blend, |a − b|, the colour bar
    expect(panes).to_have_count(4, timeout=s.ms(10))
    c_handle = compare_out.locator(".widget-slider .noUi-handle")
    c_handle.scroll_into_view_if_needed(timeout=s.ms(10))
    shots0 = [_png_array(panes.nth(k).screenshot(timeout=s.ms(20))) for k in range(3)]
    s.shot("07-compare-before.png", compare_out)
    c_handle.focus(timeout=s.ms(10))
    page.keyboard.press("ArrowRight")
    s.wait_text(c_info, r"^blend: step 1/10 ·.*no blend: step 1/10 ·", cap=30)
    page.wait_for_timeout(300)
    shots1 = [_png_array(panes.nth(k).screenshot(timeout=s.ms(20))) for k in range(3)]
    s.shot("08-compare-after-arrow.png", compare_out)
    for name, a, b in zip(("blend", "no blend", "|a - b|"), shots0, shots1):
        assert a.shape == b.shape and np.abs(b - a).sum(-1).mean() > 1.0, f"the {name} pane did not change"
    state = s.probe(5)
    assert state["compare_slider"] == 1 and state["compare_steps"] == [1, 1], state
    assert state["compare_difference"][0] > 0, state  # the runs differ at step 1
    s.drag_slider_to_end(compare_out)
    s.wait_text(c_info, r"^blend: step 9/10 ·.*no blend: step 9/10 ·", cap=30)
    page.wait_for_timeout(300)
    s.shot("09-compare-after-drag.png", compare_out)
    state = s.probe(6)
    assert state["compare_slider"] == 9 and state["compare_steps"] == [9, 9], state
    assert state["slider"] == 9, "moving the compare scrubber moved the other one"
    s.shot("10-lab-final.png")
