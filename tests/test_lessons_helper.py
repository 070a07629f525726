"""blendlab.lessons: a prediction made before a run, checked against what the run measured."""

import pytest

from blendlab.lessons import Check, Prediction, check, predict


def test_a_choice_starts_unanswered_and_an_unattended_check_shows_the_measurement():
    guess = predict("Does the circle appear?", ["yes", "no"], show=False)
    assert guess.widget is not None and guess.widget.value is None  # nothing chosen for the student
    assert guess.value is None
    out = check(guess, "yes", answer="Because the box is empty.", show=False)
    assert out.made is False and out.right is None
    assert "No prediction was made" in out.text and "yes" in out.text
    assert "<details><summary>Answer</summary>" in out.html and "Because the box is empty." in out.html


@pytest.mark.parametrize("picked, right", [("yes", True), ("no", False)])
def test_a_choice_made_in_the_widget_is_judged_by_the_run(picked, right):
    guess = predict("Does the circle appear?", ["yes", "no"], show=False)
    guess.widget.value = picked
    out = check(guess, "yes", show=False)
    assert out.made and out.right is right
    assert ("not what the run shows" in out.text) is (not right)


def test_a_number_within_tolerance_is_right_and_percent_is_read():
    guess = predict("What share of the box turns red?", number=True, show=False)
    guess.widget.value = "60%"
    assert guess.value == pytest.approx(0.6)
    assert check(guess, 0.7, show=False).right is True           # within 25 %
    assert check(guess, 0.9, show=False).right is False
    assert check(guess, 0.9, tolerance=0.5, show=False).right is True
    guess.widget.value = "lots"
    assert guess.value is None and check(guess, 0.7, show=False).made is False


def test_correct_names_the_choice_a_measured_number_decided():
    guess = Prediction("Does the background change?", ("yes", "no"), given="no")
    out = check(guess, 0.0012, correct="no", show=False)
    assert out.right is True and "0.0012 → no" in out.text


def test_mistakes_are_named():
    with pytest.raises(ValueError, match="either choices"):
        predict("?", show=False)
    with pytest.raises(ValueError, match="at least two different choices"):
        predict("?", ["yes", "yes"], show=False)
    guess = predict("?", ["a", "b"], show=False)
    with pytest.raises(ValueError, match="not one of the choices"):
        check(guess, "c", show=False)
    with pytest.raises(TypeError, match="the Prediction that predict"):
        check("a", "a", show=False)


def test_outside_a_notebook_check_prints_the_verdict(capsys):
    guess = Prediction("?", ("a", "b"))
    assert isinstance(check(guess, "a"), Check)
    assert "No prediction was made. The run measured: a." in capsys.readouterr().out


def test_in_ipython_a_check_ending_a_cell_is_shown_once(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    publish = shell.display_pub.publish
    shell.display_pub.publish = lambda data, **kw: shown.append(data)
    try:
        r = shell.run_cell("from blendlab.lessons import predict, check\n"
                           "g = predict('?', ['a', 'b'])\n"
                           "check(g, 'a', answer='because')")
    finally:
        shell.display_pub.publish = publish
        InteractiveShell.clear_instance()  # later tests run outside IPython again
    assert r.success
    verdicts = [d for d in shown if "No prediction was made" in d.get("text/plain", "")]
    assert len(verdicts) == 1 and "<details>" in verdicts[0]["text/html"]
