"""The summary chapter's self-test controls, driven as a learner would."""

from __future__ import annotations

import pytest

from metarl_course.widgets import QuickCheck, SelfTest


def test_the_worked_answer_stays_hidden_until_the_learner_has_written_an_answer():
    test = SelfTest("What does MAML learn?", "An **initialisation**.", min_words=5)
    assert test.button.disabled and not test.output.outputs and "5 more words" in test.status.value
    test.draft.value = "an initial point"
    assert test.button.disabled and "2 more words" in test.status.value
    test.draft.value = "an initial point that adapts fast"
    assert not test.button.disabled and test.status.value == ""
    test.button.click()
    assert test.revealed and test.button.disabled
    assert test.output.outputs[0]["data"]["text/markdown"] == "An **initialisation**."
    test.button.click()
    test.draft.value = "x"  # editing afterwards neither hides nor duplicates the answer
    assert len(test.output.outputs) == 1 and test.button.disabled


def test_self_test_refuses_empty_text():
    with pytest.raises(ValueError, match="non-empty"):
        SelfTest("Why?", "  ")
    with pytest.raises(ValueError, match="min_words"):
        SelfTest("Why?", "Because.", min_words=-1)


def test_quick_check_gives_a_verdict_and_the_explanation():
    check = QuickCheck("When is RL²'s hidden state reset?", ["every step", "every episode", "every trial"], 2,
                       "Once per trial: it carries what was learned across the trial's episodes.")
    assert check.feedback.value == ""
    check.choice.value = "every episode"
    assert not check.answered_correctly and "Not quite" in check.feedback.value
    assert "Once per trial" in check.feedback.value
    check.choice.value = "every trial"
    assert check.answered_correctly and "Right" in check.feedback.value
    with pytest.raises(ValueError, match="correct must index"):
        QuickCheck("?", ["a", "b"], 2, "")


def test_a_quick_check_can_explain_each_option():
    check = QuickCheck("2 + 2?", ["3", "4", "5"], 1, ["one short", "yes", "one too many"])
    check.choice.value = "5"
    assert "Not quite" in check.feedback.value and "one too many" in check.feedback.value
    check.choice.value = "4"
    assert "Right" in check.feedback.value and "yes" in check.feedback.value
    with pytest.raises(ValueError, match="one per option"):
        QuickCheck("?", ["a", "b"], 0, ["only one"])


def test_a_self_tests_worked_answer_is_also_kept_collapsed_for_readers_without_a_kernel():
    test = SelfTest("Why?", "Because **this**.")
    static = test.static_answer().data
    assert static.startswith("<details>") and "Because **this**." in static and static.rstrip().endswith("</details>")


def test_a_quick_check_brings_a_static_version_for_readers_without_widgets():
    check = QuickCheck("2 + 2 < 5?", ["yes", "no"], 0, ["Right: 4 < 5.", "4 is less than 5."])
    bundle = check._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab shows the widget
    static = bundle["text/html"]  # a renderer without widgets (the book) shows this
    assert "2 + 2 &lt; 5?" in static and "<li>yes</li>" in static and "<li>no</li>" in static
    question, answer = static.split("<details>")
    assert "Right: 4" not in question and "Right: <b>yes</b>" in answer and "4 is less than 5." in answer
