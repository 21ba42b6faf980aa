"""The course's controls beyond sliders: self-test questions with worked answers, and quick checks.

Sliders and plots are made in the chapters with ``ipywidgets.interact``; this
module holds the two controls of the summary chapter:

* :class:`SelfTest`: a question, a box for the learner's own answer, and a
  worked answer that the button reveals only after writing a few words (a
  collapsed copy below the widget keeps the answer readable without a kernel);
* :class:`QuickCheck`: a multiple-choice question that says right away whether
  the choice is right, and why (its static version, shown where no widget can
  run, lists the options and folds the answer away).

Both are plain ipywidgets (they work in JupyterLab and in a headless kernel)
and keep their state in attributes, so tests can drive them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
from IPython.display import Markdown, display


class SelfTest:
    """A self-test question whose worked answer is revealed after the learner has written their own.

    Args:
        question: the question, plain text.
        answer: the worked answer, Markdown (LaTeX between ``$...$`` works).
        min_words: words the learner must write before the answer can be shown.

    Example:
        >>> SelfTest("Why does MAML differentiate through the inner step?", "Because ...")  # doctest: +SKIP
    """

    def __init__(self, question: str, answer: str, min_words: int = 5) -> None:
        if not question.strip() or not answer.strip():
            raise ValueError("a self-test needs a question and a worked answer, both non-empty")
        if not isinstance(min_words, int) or min_words < 0:
            raise ValueError(f"min_words must be a non-negative integer, got {min_words!r}")
        self.answer, self.min_words, self.revealed = answer, min_words, False
        self.question = widgets.HTML(f"<b>{html.escape(question)}</b>")
        self.draft = widgets.Textarea(placeholder="Your answer, in a few sentences ...",
                                      layout=widgets.Layout(width="95%", height="80px"))
        self.button = widgets.Button(description="Show the worked answer", icon="eye",
                                     disabled=min_words > 0, layout=widgets.Layout(width="220px"))
        self.status = widgets.Label(self._status(0))
        self.output = widgets.Output()
        self.draft.observe(self._on_draft, names="value")
        self.button.on_click(self.reveal)
        self.widget = widgets.VBox([self.question, self.draft, widgets.HBox([self.button, self.status]), self.output])

    def _status(self, words: int) -> str:
        missing = self.min_words - words
        return f"write {missing} more word{'s' * (missing != 1)} first" if missing > 0 else ""

    def _on_draft(self, change: dict) -> None:
        if self.revealed:
            return
        words = len(change["new"].split())
        self.button.disabled = words < self.min_words
        self.status.value = self._status(words)

    def reveal(self, _button: widgets.Button | None = None) -> None:
        """Show the worked answer below the learner's (once)."""
        if self.revealed:
            return
        self.revealed = True
        self.output.append_display_data(Markdown(self.answer))
        self.button.disabled = True
        self.button.description = "Worked answer below"
        self.status.value = "compare it with yours"

    def static_answer(self) -> Markdown:
        """The worked answer in a collapsed block, readable where no kernel runs (a rendered notebook, a book)."""
        return Markdown(f"<details><summary>Worked answer (write your own first)</summary>\n\n{self.answer}\n\n"
                        "</details>")

    def _ipython_display_(self) -> None:
        display(self.widget)
        display(self.static_answer())


class QuickCheck:
    """A multiple-choice question with immediate feedback.

    Args:
        question: the question, plain text.
        options: the choices shown.
        correct: the index of the right choice.
        explanation: shown with the verdict: one text whichever choice was made, or one text per option
            (why that option is right or wrong), shown for the option chosen.

    Example:
        >>> QuickCheck("When is RL²'s hidden state reset?", ["every episode", "every trial"], 1,
        ...            ["Then nothing learned in an episode reaches the next.", "Yes: once per task."]).correct
        1
    """

    def __init__(self, question: str, options: Sequence[str], correct: int,
                 explanation: str | Sequence[str]) -> None:
        if len(options) < 2:
            raise ValueError(f"a quick check needs at least 2 options, got {len(options)}")
        if not 0 <= correct < len(options):
            raise ValueError(f"correct must index one of the {len(options)} options, got {correct}")
        if not isinstance(explanation, str) and len(explanation) != len(options):
            raise ValueError(f"give one explanation, or one per option ({len(options)}), got {len(explanation)}")
        self.options, self.correct, self.explanation = list(options), correct, explanation
        self.question = widgets.HTML(f"<b>{html.escape(question)}</b>")
        self.choice = widgets.RadioButtons(options=self.options, value=None, layout=widgets.Layout(width="95%"))
        self.feedback = widgets.HTML("")
        self.choice.observe(self._on_choice, names="value")
        self.widget = widgets.VBox([self.question, self.choice, self.feedback])

    @property
    def answered_correctly(self) -> bool:
        return self.choice.value == self.options[self.correct]

    def _on_choice(self, change: dict) -> None:
        if change["new"] is None:
            self.feedback.value = ""
            return
        verdict = "Right." if self.answered_correctly else "Not quite."
        color = "green" if self.answered_correctly else "#b35900"
        why = self.explanation if isinstance(self.explanation, str) else \
            self.explanation[self.options.index(change["new"])]
        self.feedback.value = f"<span style='color:{color}'><b>{verdict}</b></span> {html.escape(why)}"

    def static_html(self) -> str:
        """The question, its options and the folded answer as plain HTML, for a reader without a kernel."""
        options = "".join(f"<li>{html.escape(option)}</li>" for option in self.options)
        if isinstance(self.explanation, str):
            reasons = f"<p>{html.escape(self.explanation)}</p>"
        else:
            reasons = "<ul>" + "".join(f"<li><em>{html.escape(option)}</em>: {html.escape(why)}</li>"
                                       for option, why in zip(self.options, self.explanation)) + "</ul>"
        return (f'<div class="quick-check"><p>{self.question.value}</p><ol type="a">{options}</ol>'
                f"<details><summary>Answer (choose first)</summary><p>Right: "
                f"<b>{html.escape(self.options[self.correct])}</b></p>{reasons}</details></div>")

    def _repr_mimebundle_(self, **kwargs) -> dict:
        # The widget, and beside it its static version: JupyterLab shows the widget, a renderer without widgets
        # (a rendered notebook, the course's book) shows the HTML.
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.static_html()
        return bundle
