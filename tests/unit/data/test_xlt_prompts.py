"""The ``xlt`` protocol (cross-lingual-thought prompting): the rendered prompt of every task, written out by
hand, and the ``harness`` / ``paper`` renderings byte-identical to those before XLT existed."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.tasks import PROTOCOLS, TaskItem, get_task, list_tasks, rendered_fingerprint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PAPER = FIXTURES / "data" / "hf" / "paper" / "{dataset}_{lang}_{split}.jsonl"


def xlt(task: str, lang: str, split: str):
    definition = get_task(task)
    return definition.render(definition.load(lang, split, data_files=PAPER)[0], "xlt")


def instructions(expertise: str, language: str, request: str, goal: str, answer: str, cue: str = "Answer") -> str:
    return (
        f"You are an expert in {expertise} for {language} text.\n{request}\n"
        f"First restate the request above in English.\n{goal}\nThen reason step by step in English.\n"
        f'Finally give the {answer} after "{cue}:".\n{cue}:'
    )


def test_every_task_has_every_protocol() -> None:
    assert PROTOCOLS == ("harness", "paper", "xlt")
    for name in list_tasks():
        assert tuple(get_task(name).templates) == PROTOCOLS, name


def test_xnli_xlt_scores_the_label_names_after_the_cue() -> None:
    item = xlt("xnli", "de", "test")
    assert item.prompt == instructions(
        "natural language inference",
        "German",
        "Premise: Die Kinder spielen im Garten.\nHypothesis: Kinder sind draußen.",
        "Decide whether the premise entails the hypothesis, contradicts it, or neither.",
        "answer (entailment, neutral or contradiction)",
    )
    assert (item.choices, item.gold, item.target) == ([" entailment", " neutral", " contradiction"], 0, " entailment")


def test_xcopa_xlt_names_cause_or_effect() -> None:
    item = xlt("xcopa", "sw", "test")
    assert item.prompt == instructions(
        "commonsense causal reasoning",
        "Swahili",
        "Premise: Dirisha lilivunjika.\nOption 1: Mpira uliligonga.\nOption 2: Jua liliangaza.",
        "Choose the option that is the more plausible cause of the premise.",
        "answer (1 or 2)",
    )
    assert (item.choices, item.gold) == ([" 1", " 2"], 0)


def test_pawsx_xlt_keeps_the_raw_sentences() -> None:
    item = xlt("pawsx", "de", "test")
    assert item.prompt == instructions(
        "paraphrase identification",
        "German",
        "Sentence 1: Die Straße verbindet die beiden Dörfer .\nSentence 2: Die beiden Dörfer verbindet die Straße .",
        "Decide whether the two sentences mean the same thing.",
        "answer (yes or no)",
    )
    assert (item.choices, item.gold) == ([" no", " yes"], 1)


def test_mgsm_xlt_leaves_room_to_reason() -> None:
    item = xlt("mgsm", "de", "test")
    assert item.prompt == instructions(
        "arithmetic reasoning",
        "German",
        "Question: Tara hat 9 Muscheln und findet 14 weitere. Wie viele Muscheln hat sie?",
        "Solve the math word problem.",
        "answer (a single number)",
    )
    assert (item.target, item.gold, item.choices) == (" 23", ["23"], None)
    assert (item.stop, item.max_new_tokens) == (["Question:", "</s>", "<|im_end|>"], 256)


def test_xquad_xlt_asks_for_a_span_in_the_context_language() -> None:
    item = xlt("xquad", "de", "validation")
    assert item.prompt == instructions(
        "extractive question answering",
        "German",
        "Context: Der Hafen wurde 1980 vertieft, damit große Schiffe einlaufen konnten.\n"
        "Question: Wann wurde der Hafen vertieft?",
        "Answer the question with a span copied from the context.",
        "answer (the span, copied in the language of the context)",
    )
    assert (item.target, item.gold, item.stop, item.max_new_tokens) == (" 1980", ["1980"], ["\n"], 32)


def test_xlsum_xlt_asks_for_a_summary_in_the_article_language() -> None:
    item = xlt("xlsum", "sw", "test")
    assert item.prompt == instructions(
        "news summarization",
        "Swahili",
        "Article: Wanafunzi waliwatazama wafanyakazi wakiweka paneli juu ya paa la shule. "
        "Paneli zitatoa umeme madarasani.",
        "Summarize the article in one sentence.",
        "summary (one sentence in Swahili)",
        cue="Summary",
    )
    assert (item.target, item.stop, item.max_new_tokens) == (" Shule imeweka paneli za umeme wa jua.", ["\n"], 64)


def test_multiemo_and_entailed_polarity_xlt() -> None:
    review = TaskItem(id="multiemo-text/es/test/0", lang="es", fields={"text": "Muy buen hotel.", "label": 0})
    item = get_task("multiemo").render(review, "xlt")
    assert item.prompt == instructions(
        "sentiment analysis of reviews",
        "Spanish",
        "Review: Muy buen hotel.",
        "Decide the overall sentiment of the review.",
        "sentiment (positive, negative, neutral or ambivalent)",
        cue="Sentiment",
    )
    assert item.choices == [" positive", " negative", " neutral", " ambivalent"]
    fact = TaskItem(id="entailed_polarity/hi/test/0", lang="hi", fields={"input": "तथ्य", "label": 1})
    hindi = get_task("entailed_polarity").render(fact, "xlt")
    assert hindi.prompt.startswith("You are an expert in reading comprehension for Hindi text.\nतथ्य\n")
    assert hindi.prompt.endswith('Finally give the answer (हां or नहीं) after "Answer:".\nAnswer:')
    assert (hindi.choices, hindi.gold) == ([" हां", " नहीं"], 1)


# sha256 of the rendered items (rendered_fingerprint) of each fixture before the xlt protocol was added.
BEFORE = {
    (
        "xnli",
        "de",
        "test",
        "data/hf/xnli_de.jsonl",
        "harness",
    ): "19b8c121d89aea5df5aff1e6b4441923eb2ef1253078a2ac64339c656f754367",
    (
        "xnli",
        "de",
        "test",
        "data/hf/xnli_de.jsonl",
        "paper",
    ): "1bc61ab23e2ee271ea4064e6ab5575bebb98be82c949a9b3cf33f508849a9f4b",
    (
        "xnli",
        "en",
        "test",
        "data/hf/xnli_en.jsonl",
        "harness",
    ): "05f5fe9600b92ed5a1c4c274a27de261e82bee48b884302d0b6669aa64992324",
    (
        "xnli",
        "en",
        "test",
        "data/hf/xnli_en.jsonl",
        "paper",
    ): "6357cdc6d1afee69f38510c95ea7278137a26df8d89ad1aeadc92a345d16dee0",
    (
        "xcopa",
        "sw",
        "test",
        "data/hf/xcopa_sw.jsonl",
        "harness",
    ): "427e35654bb284206ba45988b27d4f6b7736201f474c39971de2e68738726db5",
    (
        "xcopa",
        "sw",
        "test",
        "data/hf/xcopa_sw.jsonl",
        "paper",
    ): "ff1f9ad353f6fb60030adb523b80c72168189e4a33d85ed90b4822bd7bdd44e8",
    (
        "xcopa",
        "en",
        "test",
        "data/hf/balanced_copa_en.jsonl",
        "harness",
    ): "e6425d75c8078f1a52700b0aaae5c082f73b6978f42e6dd70acae8c67c90cd54",
    (
        "xcopa",
        "en",
        "test",
        "data/hf/balanced_copa_en.jsonl",
        "paper",
    ): "96a5457681adabc5bd89cbf43cb02720ff98f12720eb8a7b3e97bfe0f7129b5c",
    (
        "pawsx",
        "fr",
        "test",
        "data/hf/pawsx_fr.jsonl",
        "harness",
    ): "992cd1d132f86ef793e6c33ed96154047530ecded6627f80b28821c129d09d94",
    (
        "pawsx",
        "fr",
        "test",
        "data/hf/pawsx_fr.jsonl",
        "paper",
    ): "1619852292635f30321c6736fe2642b1d659252fb701b2b7949f473bfd1826c9",
    (
        "mgsm",
        "de",
        "test",
        "data/hf/mgsm_de_test.jsonl",
        "harness",
    ): "e3f21cbd5ef0db212fc831aa737c72630e539072ee565befe4ab05da3b05b0e8",
    (
        "mgsm",
        "de",
        "test",
        "data/hf/mgsm_de_test.jsonl",
        "paper",
    ): "410d3d9e7dcf00eb97a3c5c18fd1cbded14bc6156366d4883ea4cdbef7b804a5",
    (
        "xquad",
        "de",
        "validation",
        "data/hf/xquad_de.jsonl",
        "harness",
    ): "ae4306d44305f4e5efdd5d60dbf00700a2a7956c50e74d4103f7c25078e13b0e",
    (
        "xquad",
        "de",
        "validation",
        "data/hf/xquad_de.jsonl",
        "paper",
    ): "58ba63d64c47946901f2dc8288fd471bef6d6e68df74d26f7e01d444b308f953",
    (
        "xlsum",
        "sw",
        "test",
        "data/hf/xlsum_sw.jsonl",
        "harness",
    ): "007d881bc2ff2fe9eba349e67c7526b04a5d9e823b3ad1884cb0ec56e7b48bba",
    (
        "xlsum",
        "sw",
        "test",
        "data/hf/xlsum_sw.jsonl",
        "paper",
    ): "3df66accb0b01696f371858bbaba043180b67b5a66e0f0a8347c00ff326f2d48",
    (
        "mgsm",
        "de",
        "test",
        "evaluation/mgsm_de.jsonl",
        "harness",
    ): "693fcffba4013aa6cea33a8944b19328b698a8d424851d5aed5cf33a8ef92177",
    (
        "mgsm",
        "de",
        "test",
        "evaluation/mgsm_de.jsonl",
        "paper",
    ): "d578f349db30d127663df9dcdbbcb503db8798eb8655c7254807cd98abe2cbef",
    (
        "xquad",
        "de",
        "validation",
        "evaluation/xquad_de.jsonl",
        "harness",
    ): "279746584419d0546d048df6332e32a4a0ac8cdd7b360ac18c684ba42bb8eae8",
    (
        "xquad",
        "de",
        "validation",
        "evaluation/xquad_de.jsonl",
        "paper",
    ): "f38a71c5230c03345f572ce45a97ef9f835a50b7831c80e6b504e15f7513033c",
    (
        "pawsx",
        "de",
        "test",
        "evaluation/pawsx_de.jsonl",
        "harness",
    ): "5edeb7ff371a46455db5660dbd56ce02f8168602ed75720c48734cf573d3d594",
    (
        "pawsx",
        "de",
        "test",
        "evaluation/pawsx_de.jsonl",
        "paper",
    ): "d022b167b2606f249c2846a53b9786ddc2a7719ad70c6f1d18795e912c610ee0",
    (
        "xcopa",
        "it",
        "test",
        "evaluation/xcopa_it.jsonl",
        "harness",
    ): "6d76138a1df3ab5ad68eceba512dc4b4670a220b8d07c21b9f81731b2ad5f3ca",
    (
        "xcopa",
        "it",
        "test",
        "evaluation/xcopa_it.jsonl",
        "paper",
    ): "0918100dea7c52c1e6332daf7b08cee6d7fd43d7aba6fa607db4404219fa8ac6",
    (
        "xnli",
        "zh",
        "test",
        "evaluation/xnli_zh.jsonl",
        "harness",
    ): "4e2d11a620ce72dff4d857f4f7b69811d45022923017afe3356370266c8e40a1",
    (
        "xnli",
        "zh",
        "test",
        "evaluation/xnli_zh.jsonl",
        "paper",
    ): "87ec8b502fa2a64565ee35893503221afd7138603a19d4bc7ae34fa49224a226",
}


@pytest.mark.parametrize("case", sorted(BEFORE), ids=lambda case: "-".join(case[:2] + case[4:]))
def test_harness_and_paper_renderings_are_unchanged(case: tuple[str, str, str, str, str]) -> None:
    task, lang, split, fixture, protocol = case
    definition = get_task(task)
    items = definition.load(lang, split, data_files=FIXTURES / fixture)
    assert rendered_fingerprint([definition.render(item, protocol) for item in items]) == BEFORE[case]  # type: ignore[arg-type]
