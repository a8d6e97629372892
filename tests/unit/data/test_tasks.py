"""Prompt rendering per task and protocol, on fixture rows in each dataset's schema; expected strings are
written out by hand from the lm-evaluation-harness task definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.languages import UnknownLanguageError
from adamergex.data.tasks import TaskError, get_task, list_tasks, rendered_fingerprint, truncate_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"

HF = FIXTURES / "hf"


def rendered(task: str, lang: str, split: str, fixture: str, protocol: str = "harness"):
    definition = get_task(task)
    items = definition.load(lang, split, data_files=HF / fixture)
    return [definition.render(item, protocol) for item in items]  # type: ignore[arg-type]


def test_registry_lists_all_tasks_and_rejects_unknown() -> None:
    assert list_tasks() == ["entailed_polarity", "mgsm", "multiemo", "pawsx", "xcopa", "xlsum", "xnli", "xquad"]
    assert get_task("PAWS-X").name == "pawsx"
    with pytest.raises(TaskError, match="unknown task 'xstory'; expected one of: entailed_polarity, mgsm, multiemo"):
        get_task("xstory")


def test_xnli_harness_german() -> None:
    first, _, third = rendered("xnli", "de", "test", "xnli_de.jsonl")
    sentence = " Der Hund schläft im Garten., richtig? {}, Ein Tier ruht draußen."
    assert first.prompt == ""
    assert first.choices == [sentence.format("Ja"), sentence.format("Auch"), sentence.format("Nein")]
    assert (first.gold, first.target) == (0, sentence.format("Ja"))
    assert third.gold == 2 and third.target.startswith(" Das Museum ist montags geschlossen., richtig? Nein, ")


def test_xnli_paper_prompt_uses_label_names() -> None:
    (item,) = rendered("xnli", "en", "test", "xnli_en.jsonl", "paper")
    assert item.prompt == (
        "Premise: The dog sleeps in the garden.\nHypothesis: An animal is resting outside.\n"
        "Does the premise entail the hypothesis? Answer entailment, neutral or contradiction.\nAnswer:"
    )
    assert item.choices == [" entailment", " neutral", " contradiction"] and item.target == " entailment"


def test_xcopa_harness_drops_period_and_lowercases_choices() -> None:
    cause, effect = rendered("xcopa", "sw", "test", "xcopa_sw.jsonl")
    assert cause.prompt == "Mtoto alilia kwa sababu"
    assert cause.choices == [" alianguka chini.", " alicheka sana."] and cause.gold == 0
    assert effect.prompt == "Mvua ilinyesha kwa siku tatu kwa hiyo"
    assert effect.target == " mto ulifurika."


def test_xcopa_english_uses_balanced_copa_schema() -> None:
    (item,) = rendered("xcopa", "en", "test", "balanced_copa_en.jsonl")
    assert item.prompt == "The man broke his toe because"
    assert item.choices == [" he dropped a hammer on his foot.", " he got a hole in his sock."]


def test_pawsx_harness_scores_whole_sentences_no_then_yes() -> None:
    paraphrase, other, tokenized = rendered("pawsx", "fr", "test", "pawsx_fr.jsonl")
    assert paraphrase.prompt == ""
    assert paraphrase.choices == [
        "Le train part à midi, n'est-ce pas? Non, à midi, le train part.",
        "Le train part à midi, n'est-ce pas? Oui, à midi, le train part.",
    ]
    assert paraphrase.gold == 1 and other.gold == 0
    assert paraphrase.id == "pawsx/fr/test/11"
    # The harness detokenises: "( tard ) ." -> "(tard)." and drops sentence 1's final period.
    assert tokenized.target == "Elle est partie (tard), n'est-ce pas? Oui, tard, elle est partie."
    (paper, *_) = rendered("pawsx", "fr", "test", "pawsx_fr.jsonl", "paper")
    assert paper.prompt.startswith("Sentence 1: Le train part à midi.\nSentence 2: À midi, le train part.\n")


def test_mgsm_harness_direct_prompt_and_numeric_target() -> None:
    (exemplar,) = rendered("mgsm", "de", "exemplars", "mgsm_de_train.jsonl")
    assert exemplar.prompt == "Frage: Anna hat 3 Äpfel und kauft 2 dazu. Wie viele Äpfel hat sie?\nAntwort:"
    assert (exemplar.target, exemplar.gold, exemplar.id) == (" 5", ["5"], "mgsm/de/exemplars/0")
    whole, fraction = rendered("mgsm", "de", "test", "mgsm_de_test.jsonl")
    assert whole.prompt == "Frage: Ein Zug fährt 60 km pro Stunde. Wie weit fährt er in 2,5 Stunden?\nAntwort:"
    assert whole.gold == ["150"] and fraction.gold == ["3.5"] and whole.choices is None
    assert (whole.stop, whole.max_new_tokens) == (["Frage:", "</s>", "<|im_end|>"], 256)
    (paper, _) = rendered("mgsm", "de", "test", "mgsm_de_test.jsonl", "paper")
    assert (paper.stop, paper.max_new_tokens) == (["\n\n", "\n"], 32)
    assert get_task("mgsm").stop == ("\n\n", "\n")


def test_xquad_harness_prompt_and_all_reference_answers() -> None:
    (item,) = rendered("xquad", "de", "validation", "xquad_de.jsonl")
    assert item.prompt == (
        "Kontext: Die Elbe fließt durch Dresden und Hamburg. Sie mündet in die Nordsee.\n\n"
        "Frage: In welches Meer mündet die Elbe?\n\nAntwort:"
    )
    assert item.target == " in die Nordsee" and item.gold == ["in die Nordsee"]  # the harness scores answer 1
    (paper,) = rendered("xquad", "de", "validation", "xquad_de.jsonl", "paper")
    assert paper.gold == ["in die Nordsee", "Nordsee"] and paper.stop == ["\n"]


def test_xlsum_prompts_and_summary_target() -> None:
    (harness,) = rendered("xlsum", "sw", "test", "xlsum_sw.jsonl")
    (paper,) = rendered("xlsum", "sw", "test", "xlsum_sw.jsonl", "paper")
    text = "Mvua kubwa imenyesha mjini kwa siku mbili mfululizo. Barabara nyingi zimefungwa."
    assert harness.prompt == f"Article: {text}\nSummary:"
    assert paper.prompt == f"Summarize the following article in one sentence.\nArticle: {text}\nSummary:"
    assert harness.target == " Mvua kubwa imenyesha mjini kwa siku mbili." == paper.target


def test_missing_fields_in_local_rows_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"premise": "a", "label": 0}\n', encoding="utf-8")
    with pytest.raises(Exception, match="lack field\\(s\\) hypothesis of facebook/xnli"):
        get_task("xnli").load("de", "test", data_files=bad)


def test_unknown_language_split_and_protocol() -> None:
    task = get_task("xnli")
    with pytest.raises(UnknownLanguageError, match="task 'xnli' has no language 'ja'; expected one of: ar, bg, de"):
        task.load("ja", "test")
    with pytest.raises(TaskError, match="no split 'dev'; expected one of: train, validation, test"):
        task.load("de", "dev")
    item = task.load("de", "test", data_files=HF / "xnli_de.jsonl")[0]
    with pytest.raises(TaskError, match="no protocol 'lmeval'"):
        task.render(item, "lmeval")  # type: ignore[arg-type]


def test_multiemo_items_prompts_and_aligned_subsets(multiemo_folder: Path, synthetic_label) -> None:
    task = get_task("multiemo")
    english = task.load("en", "test", archive=multiemo_folder, limit=20, seed=4)
    polish = task.load("pl", "test", archive=multiemo_folder, limit=20, seed=4)
    assert [item.fields["aligned_index"] for item in english] == [item.fields["aligned_index"] for item in polish]
    assert all(item.fields["label_name"] == synthetic_label(item.fields["index"]) for item in english)
    first = task.render(english[0])
    assert (
        first.prompt
        == f"Review: en review {english[0].fields['index']} (aligned {english[0].fields['index']})\nSentiment:"
    )
    assert first.choices == [" positive", " negative", " neutral", " ambivalent"]
    assert first.choices[first.gold] == " " + english[0].fields["label_name"]
    paper = task.render(english[0], "paper")
    assert paper.prompt.startswith("Determine whether given opinion is positive, negative, neutral or ambivalent")
    assert task.load("en", "test", archive=multiemo_folder, limit=20, seed=5) != english
    assert len(task.load("de", "dev", archive=multiemo_folder)) == 500


def test_multiemo_sentence_level_unaligned_needs_consent(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="not index-aligned with the other languages"):
        get_task("multiemo").load("de", "test", level="sentence", archive=tmp_path)


def test_truncation_by_characters_and_by_tokens(tokenizer, multiemo_folder: Path) -> None:
    text = "Der Hund schläft im Garten. Mvua kubwa imenyesha."
    assert truncate_text(text, max_chars=9) == "Der Hund "
    ids = tokenizer.encode(text, add_special_tokens=False)
    cut = truncate_text(text, max_tokens=5, tokenizer=tokenizer)
    assert text.startswith(cut) and tokenizer.encode(cut, add_special_tokens=False) == ids[:5]
    assert truncate_text(text, max_tokens=len(ids) + 3, tokenizer=tokenizer) == text
    items = get_task("multiemo").load("en", "dev", archive=multiemo_folder, limit=2, max_text_chars=6)
    assert [item.fields["text"] for item in items] == ["en rev", "en rev"]
    with pytest.raises(TaskError, match="needs a tokenizer"):
        truncate_text(text, max_tokens=3)


def test_rendered_fingerprint_identifies_the_exact_data() -> None:
    harness = rendered("xnli", "de", "test", "xnli_de.jsonl")
    paper = rendered("xnli", "de", "test", "xnli_de.jsonl", "paper")
    assert rendered_fingerprint(harness) == rendered_fingerprint(rendered("xnli", "de", "test", "xnli_de.jsonl"))
    assert rendered_fingerprint(harness) != rendered_fingerprint(paper)
    assert rendered_fingerprint(harness) != rendered_fingerprint(harness[:2])


def test_unknown_source_options_are_refused_with_the_valid_ones() -> None:
    assert get_task("xnli").source_options() == ("data_files",)
    assert get_task("multiemo").source_options() == ("level", "archive", "offline", "allow_unaligned")
    with pytest.raises(TaskError, match="task 'xnli' does not take option\\(s\\) level; it takes: data_files"):
        get_task("xnli").load("de", "test", level="text")
