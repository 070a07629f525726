"""End to end: the EditorApp in JupyterLab at a laptop's width (1280 × 800), in headless Chromium.

The test writes a notebook with one ``EditorApp`` (tiny models) and a probe cell, opens it in Debian's
Chromium at a 1280 × 800 viewport, runs all cells, and then checks the app's output area

- before the first Run, after a Run without recording (a long status line, the gallery and the x̂0
  preview filled in), after a recorded Run (the step scrubber shown), after another Run without
  recording (the scrubber cleared, with a note) and after an error message;
- each time: no element inside the app is wider than its box (``scrollWidth > clientWidth + 1``: a
  squeezed column, an input sticking out, a scroll bar of the output area; and text cut with an
  ellipsis, "rectan…", measured against its content box), no image is broken (an ``<img>`` with an
  empty ``src``, or loaded with ``naturalWidth == 0``), and the painter's tools, canvas and size
  slider, the prompt box, the first setting and the Run button keep their on-screen size and place.

It also checks that the kernel imports the same blendlab as this test process (``PYTHONPATH``).
Screenshots go to $BLENDLAB_BROWSER_ARTIFACTS (default: a pytest tmp dir). See docs/browser-test.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_lab_widgets import Session, drive  # tests/browser is on sys.path (no __init__.py)

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1280, "height": 800}

CELLS = [
    # 0: the app, with quick settings (tiny models: a Run takes a few seconds)
    """\
import json
import blendlab as bl
from blendlab.widgets import EditorApp
models = bl.load_models("tiny", device="cpu")
app = EditorApp(models, prompt="a red knitted beanie with a large white pompom on top")
app.settings.set(timestep_respacing="6", skip_timesteps=2, batch_size=2, iterations_num=1, aug_num=1)
app""",
    # 1: the probe: what the kernel holds, as one JSON line
    """\
_probe_run = globals().get("_probe_run", 0) + 1
print("PROBE " + json.dumps({
    "run": _probe_run,
    "blendlab": bl.__file__,
    "message": app.message,
    "pixels": int(app.painter.mask.sum()),
    "scrubber": app.scrubber is not None,
}))""",
]

#: Every element inside the app's output area that is wider than its box, and every broken image.
#: Wider: ``scrollWidth > clientWidth + 1``, or (for text cut with an ellipsis, e.g. "rectan…", which
#: scrollWidth rounds away when it is short by less than a pixel) text wider than the content box.
#: Not counted: the parts of a slider inside its track (its handle sits around a 4 px origin by
#: design); the slider's own box is counted.
CHECK_JS = """(root) => {
  const bad = [], broken = [];
  const name = (e) => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string'
      ? '.' + e.className.trim().split(/\\s+/).slice(0, 3).join('.') : '');
  const px = (v) => parseFloat(v) || 0;
  for (const e of [root, ...root.querySelectorAll('*')]) {
    const text = (e.innerText || e.value || e.placeholder || '').slice(0, 60);
    if (e.closest('.noUi-base')) continue;
    if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
      bad.push({el: name(e), text, scrollWidth: e.scrollWidth, clientWidth: e.clientWidth});
    }
    const st = getComputedStyle(e);
    if (st.textOverflow === 'ellipsis' && st.overflowX !== 'visible' && e.childNodes.length) {
      const range = document.createRange();
      range.selectNodeContents(e);
      const inner = e.getBoundingClientRect().width - px(st.paddingLeft) - px(st.paddingRight)
                    - px(st.borderLeftWidth) - px(st.borderRightWidth);
      const need = range.getBoundingClientRect().width;
      if (need > inner + 0.01) bad.push({el: name(e), text, textWidth: need, contentWidth: inner});
    }
    if (e.tagName === 'IMG') {
      const src = e.getAttribute('src') || '';
      if (!src || (e.complete && e.naturalWidth === 0)) broken.push({el: name(e), src: src.slice(0, 40)});
    }
  }
  return {bad, broken, images: root.querySelectorAll('img').length};
}"""

#: On-screen boxes of the widgets that must not move or shrink as messages and results come and go.
BOXES_JS = """(root) => {
  const box = (sel) => { const e = root.querySelector(sel); if (!e) return null;
    const r = e.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.width), Math.round(r.height)]; };
  return {canvas: box('canvas'), tools: box('.widget-toggle-buttons'), slider: box('.widget-slider'),
          prompt: box('.widget-textarea textarea'), form: box('.widget-text input'),
          run: box('button.mod-success')};
}"""


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, str(path))


def test_editor_app_fits_a_laptop_width_in_jupyterlab(lab, browser, artifacts, record_shots):
    page = browser.page
    page.set_viewport_size(VIEWPORT)
    write_notebook(lab.root / "test.ipynb")
    s = Session(page, artifacts, lab.deadline)
    record_shots(s.shots)
    drive(lab, browser, s, _run, "app-failure-page.png")


def _probe(s: Session, run: int) -> dict:
    if run > 1:
        s.cell(1).locator(".jp-InputArea-editor").click(timeout=s.ms(20))
        s.page.keyboard.press("Control+Enter")
    text = s.wait_text(s.output(1), rf'PROBE \{{"run": {run},', cap=60)
    line = next(ln for ln in text.splitlines() if ln.startswith("PROBE "))
    return json.loads(line[len("PROBE "):])


def _check(s: Session, out, when: str, shot: str) -> dict:
    """No overflowing element and no broken image in the app's output area; return the boxes."""
    s.page.wait_for_timeout(400)  # let new pictures decode
    root = out.locator(".jp-OutputArea-output").first
    found = root.evaluate(CHECK_JS)
    root.evaluate("(r) => r.scrollIntoView({block: 'end'})")  # the page as a person sees its end
    s.shot(shot)
    problems = ([f"wider than its box: {json.dumps(b)}" for b in found["bad"]]
                + [f"broken image: {json.dumps(b)}" for b in found["broken"]])
    assert not problems, f"{when}:\n" + "\n".join(problems)
    return root.evaluate(BOXES_JS)


#: Watch the app's output for the status of a starting Run ("running ..."): a tiny Run can end
#: before a poll sees it, and its "done: ..." line can read like the last Run's.
WATCH_JS = """(root) => {
  window.__sawRunning = false;
  const seen = () => { if (root.innerText.includes('running ')) window.__sawRunning = true; };
  new MutationObserver(seen).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def _press_run(s: Session, out, status: str, starts: bool = True) -> str:
    """Press Run; wait for the Run to start (``starts``) and for the status line to match ``status``."""
    from playwright.sync_api import expect

    if starts:
        out.locator(".jp-OutputArea-output").first.evaluate(WATCH_JS)
    run = out.locator("button", has_text=re.compile(r"^\s*Run\s*$"))
    run.click(timeout=s.ms(10))
    if starts:
        s.page.wait_for_function("() => window.__sawRunning", timeout=s.ms(30))
    text = s.wait_text(out.locator(".widget-html", has_text=re.compile(status)), status, cap=60)
    expect(run).to_be_enabled(timeout=s.ms(30))  # the Run has ended (scrubber and buttons set)
    return text


def _run(lab, page, s: Session) -> None:
    import blendlab
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/test.ipynb?token={lab.token}", timeout=s.ms(60))
    expect(page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")).to_have_count(len(CELLS), timeout=s.ms(60))
    s.wait_kernel_connected(lab)
    s.cell(0).click(timeout=s.ms(10))
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click(timeout=s.ms(10))
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=s.ms(10))

    out = s.output(0)
    expect(out.locator("canvas").first).to_be_visible(timeout=s.ms(90))
    s.wait_text(out, r"mask: \d+ of 1024 pixels", cap=30)
    state = _probe(s, 1)
    assert Path(state["blendlab"]).resolve() == Path(blendlab.__file__).resolve(), (
        f"the kernel imports {state['blendlab']}, this test {blendlab.__file__}: set PYTHONPATH")
    s.shot("app-01-page.png")
    boxes = _check(s, out, "before the first Run", "app-02-before-run.png")
    assert state["pixels"] > 0, "the app should start with the lesson's mask"
    assert all(boxes.values()), boxes

    # a Run without recording: the status line grows, the gallery and the preview fill in
    _press_run(s, out, r"done: 2 images")
    assert _check(s, out, "after a Run", "app-03-after-run.png") == boxes, "widgets moved or resized"

    # a recorded Run shows the step scrubber ...
    out.locator("label", has_text="record steps").locator("input").check(timeout=s.ms(10))
    _press_run(s, out, r"done: 2 images")
    expect(out.locator(".widget-slider")).to_have_count(2, timeout=s.ms(30))  # size + steps
    _check(s, out, "after a recorded Run", "app-04-recorded.png")
    # ... and a Run without recording clears it, saying why
    out.locator("label", has_text="record steps").locator("input").uncheck(timeout=s.ms(10))
    _press_run(s, out, r"done: 2 images")
    expect(out.locator(".widget-slider")).to_have_count(1, timeout=s.ms(30))
    s.wait_text(out, r"turn on .record steps.", cap=10)
    assert _check(s, out, "after an unrecorded Run", "app-05-unrecorded.png") == boxes

    # an error message as long as any: the layout holds
    page.locator("button", has_text=re.compile(r"^\s*clear\s*$")).click(timeout=s.ms(10))
    _press_run(s, out, r"the mask is empty", starts=False)  # refused: no Run starts
    assert _check(s, out, "after an error", "app-06-error.png") == boxes, "widgets moved or resized"
    state = _probe(s, 2)
    assert state["pixels"] == 0 and "paint" in state["message"], state
