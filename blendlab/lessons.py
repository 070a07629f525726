"""Predictions that check themselves: the student commits a guess *before* a run, the run's numbers judge it.

Every exercise of the lessons is *predict → change one setting → run → check*. A prediction you only
think is easy to revise after seeing the picture; one you clicked is not. So an exercise opens with

    guess = predict("Does the red circle still appear?", ["yes", "no"])

which shows a choice (or a number box, ``number=True``) and stores what the student picks. The cell
that follows is run as it stands (the student changes the one setting it names), and then

    check(guess, measured=verdict, answer="...why...")

prints what was predicted, what the run measured and whether they agree, and only then unfolds the
explanation (as a collapsed *Answer*). Run unattended (nbval, "Run all" without clicking) nothing was
predicted: :func:`check` says so, shows the measured value and the folded answer, and never fails.

Why not a quiz library: ``jupyterquiz`` checks answers in the browser against answers written into
the notebook before the run, so it cannot compare a guess with a number the run measures; ``otter``
grades code against hidden tests, a heavier machinery for a different job. Both would also put the
answer in the notebook before the run.

May import: nothing.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any, Sequence

__all__ = ["Prediction", "Check", "predict", "check"]

#: ids of the Check objects :func:`check` has just displayed (so the cell's echo does not repeat them).
_SHOWN: dict[int, bool] = {}


@dataclasses.dataclass
class Prediction:
    """A question and the student's answer to it (``value`` is None until one is given).

    ``choices``: the options of a multiple-choice question, or None for a number.  ``widget``: the
    ipywidgets control the student answers with (None outside a notebook). ``given`` overrides the
    widget (tests, or a student who prefers typing ``guess.given = "no"``).
    """

    question: str
    choices: tuple[str, ...] | None = None
    widget: Any = None
    given: Any = None

    @property
    def number(self) -> bool:
        return self.choices is None

    @property
    def value(self):
        """The prediction: one of ``choices``, a float, or None when none was made."""
        raw = self.given
        if raw is None and self.widget is not None:
            raw = self.widget.value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if self.number:
            try:
                return float(str(raw).strip().rstrip("%")) / (100.0 if str(raw).strip().endswith("%") else 1.0)
            except ValueError:
                return None
        return str(raw)


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of :func:`check`: ``made`` (was anything predicted), ``right`` (None when not made),
    ``text`` (the one line printed), ``html`` (the line and the folded answer)."""

    made: bool
    right: bool | None
    predicted: Any
    measured: Any
    text: str
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def _ipython_display_(self) -> None:
        """A cell ending in ``check(...)`` shows the verdict once: :func:`check` already showed it."""
        if not _SHOWN.pop(id(self), False):
            from IPython.display import display

            display({"text/html": self.html, "text/plain": self.text}, raw=True)

    def __repr__(self) -> str:
        return self.text


def _widget(question: str, choices: tuple[str, ...] | None):
    try:
        import ipywidgets as w
    except ImportError:  # plain Python: no widget, set ``given`` instead
        return None
    layout = w.Layout(width="auto")
    if choices is None:
        return w.Text(value="", placeholder="your number, before you run", description="Predict:",
                      layout=layout)
    return w.RadioButtons(options=list(choices), value=None, description="Predict:", layout=layout)


def predict(question: str, choices: Sequence[str] | None = None, *, number: bool = False,
            show: bool = True) -> Prediction:
    """Ask ``question`` and show the control to answer it with; returns the :class:`Prediction`.

    Give ``choices`` for a multiple-choice question, or ``number=True`` for a number (``"12"``,
    ``"0.4"`` or ``"40%"``). Nothing is chosen to begin with, so an unattended run predicts nothing.
    """
    if (choices is None) == (not number):
        raise ValueError("predict() needs either choices=[...] or number=True (not both, not neither)")
    if choices is not None:
        choices = tuple(str(c) for c in choices)
        if len(choices) < 2 or len(set(choices)) != len(choices):
            raise ValueError(f"predict() needs at least two different choices, got {list(choices)}")
    pred = Prediction(question=question, choices=choices, widget=_widget(question, choices))
    if show:
        _display_question(pred)
    return pred


def _notebook_display():
    """IPython's ``display`` when running inside an IPython shell (a notebook), else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    return display if get_ipython() is not None else None


def _display_question(pred: Prediction) -> None:
    display = _notebook_display()
    if display is None:
        print(pred.question)
        return
    display({"text/html": f"<b>Predict before you run:</b> {html.escape(pred.question)}",
             "text/plain": pred.question}, raw=True)
    if pred.widget is not None:
        display(pred.widget)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def check(prediction: Prediction, measured, *, correct=None, tolerance: float = 0.25,
          answer: str = "", show: bool = True) -> Check:
    """Compare ``prediction`` with what the run ``measured``, print one line, then the folded answer.

    For a choice question, ``measured`` is the choice the run bears out (or give ``correct`` when
    ``measured`` is a number that decided it: ``check(guess, 0.62, correct="yes")``). For a number,
    the prediction is right within ``tolerance`` (relative; absolute below 1e-9). ``answer``
    (Markdown-free HTML or plain text) is shown folded, after the verdict.
    """
    if not isinstance(prediction, Prediction):
        raise TypeError(f"check() takes the Prediction that predict() returned, not {type(prediction).__name__}")
    target = measured if correct is None else correct
    if prediction.choices is not None and str(target) not in prediction.choices:
        raise ValueError(f"the run's outcome {target!r} is not one of the choices {list(prediction.choices)}")
    guess = prediction.value
    shown = _fmt(measured) if correct is None else f"{_fmt(measured)} → {correct}"
    if guess is None:
        right = None
        text = f"No prediction was made. The run measured: {shown}."
    else:
        if prediction.number:
            m = float(target)
            right = abs(guess - m) <= max(tolerance * abs(m), 1e-9)
        else:
            right = guess == str(target)
        verdict = "right" if right else "not what the run shows"
        text = f"You predicted {_fmt(guess)}; the run measured {shown}: {verdict}."
    body = f"<p>{html.escape(text)}</p>"
    if answer:
        body += f"<details><summary>Answer</summary><p>{answer}</p></details>"
    result = Check(made=guess is not None, right=right, predicted=guess, measured=measured, text=text,
                   html=body)
    if show:
        _display_check(result)
    return result


def _display_check(result: Check) -> None:
    display = _notebook_display()
    if display is None:
        print(result.text)
        return
    display({"text/html": result.html, "text/plain": result.text}, raw=True)
    _SHOWN.clear()  # only the latest check can be a cell's last expression
    _SHOWN[id(result)] = True
