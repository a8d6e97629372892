"""Cross-lingual-thought prompting, XLT (Huang et al., 2023, "Not All Languages Are Created Equal in LLMs:
Improving Multilingual Capability by Cross-Lingual-Thought Prompting"): the AdaMergeX paper's prompting
baseline, run on the base model.

One template shape serves every task. It tells the model, in English, that it is an expert in the task for
the input's language, gives the request, asks it to restate the request in English, states the task's goal,
asks for step-by-step reasoning in English, and names the answer's form and the cue it follows. The prompt
ends with that cue, so the evaluation engine scores XLT like any other protocol: the choices' log-likelihood
right after the cue (multiple choice), or a greedy generation after it read by the task's answer extractor
(generation). Under log-likelihood scoring the model's restatement and reasoning are therefore not generated:
the instructions are context, and the answer is scored in the stated format.

The wording is adamergex's own, written to the paper's description of the template's parts.
"""

from __future__ import annotations

from collections.abc import Mapping

from adamergex.data.languages import LANGUAGES
from adamergex.data.tasks.base import Derive, PromptTemplate

#: the language's English name for every known language, as the template's ``{language_name}`` word.
LANGUAGE_NAMES: dict[str, dict[str, str]] = {code: {"language_name": row.name} for code, row in LANGUAGES.items()}
SOURCE = "XLT cross-lingual-thought prompt (Huang et al., 2023), adamergex wording"


def xlt_prompt(*, expertise: str, request: str, goal: str, form: str, cue: str) -> str:
    """The XLT prompt template (a ``str.format`` template over the item's fields and ``{language_name}``).

    Args:
        expertise: the task, as the expert's field ("natural language inference").
        request: the task input with its tags ("Premise: {premise}\\nHypothesis: {hypothesis}").
        goal: one sentence saying what to do.
        form: the answer's form ("entailment, neutral or contradiction").
        cue: the word the answer follows ("Answer"); the prompt ends with ``cue + ":"``.
    """
    return (
        f"You are an expert in {expertise} for {{language_name}} text.\n"
        f"{request}\n"
        "First restate the request above in English.\n"
        f"{goal}\n"
        "Then reason step by step in English.\n"
        f'Finally give the {cue.lower()} ({form}) after "{cue}:".\n'
        f"{cue}:"
    )


def xlt_template(
    *,
    expertise: str,
    request: str,
    goal: str,
    form: str,
    cue: str = "Answer",
    choices: tuple[str, ...] | None = None,
    target: str | None = None,
    words: Mapping[str, Mapping[str, str]] | None = None,
    derive: Derive | None = None,
    stop: tuple[str, ...] | None = None,
    max_new_tokens: int | None = None,
) -> PromptTemplate:
    """A task's ``xlt`` protocol: :func:`xlt_prompt` with the task's choices or target, its words merged over
    :data:`LANGUAGE_NAMES`, and its generation settings."""
    merged: dict[str, dict[str, str]] = {lang: dict(names) for lang, names in LANGUAGE_NAMES.items()}
    for lang, own in (words or {}).items():
        merged.setdefault(lang, {}).update(own)
    return PromptTemplate(
        prompt=xlt_prompt(expertise=expertise, request=request, goal=goal, form=form, cue=cue),
        choices=choices,
        target=target,
        words=merged,
        derive=derive,
        stop=stop,
        max_new_tokens=max_new_tokens,
        source=SOURCE,
    )
