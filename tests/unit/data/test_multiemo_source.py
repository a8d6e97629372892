from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from adamergex.data.cache import ChecksumError, DataFormatError, SourceUnavailableError
from adamergex.data.sources import bigbench, multiemo
from adamergex.data.sources.multiemo import load_multiemo, member_name, parse_task_json

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def make_bigbench_archive(path: Path, languages: tuple[str, ...]) -> Path:
    """A tar.gz with the real member paths and the fixture task.json per language, plus an unrelated member."""
    data = (FIXTURES / "bigbench" / "all_text_en" / "task.json").read_bytes()
    with tarfile.open(path, "w:gz") as tar:
        members = {member_name("text", lang): data for lang in languages}
        members["bigbench-1.0.0/bigbench/benchmark_tasks/other/task.json"] = b"{}"
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_parse_fixture_task_json() -> None:
    examples = parse_task_json((FIXTURES / "bigbench" / "all_text_en" / "task.json").read_bytes())
    assert [example.label for example in examples] == ["positive", "negative", "neutral", "ambivalent"]
    assert examples[1].text == "Cold food, a noisy corridor and a broken heater."
    assert [example.index for example in examples] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "scores",
    [{"positive": 1, "negative": 1, "neutral": 0, "ambivalent": 0}, {"positive": 0, "negative": 0}, {"happy": 1}],
)
def test_examples_must_score_exactly_one_known_label(scores: dict[str, int]) -> None:
    with pytest.raises(DataFormatError, match="example 0"):
        parse_task_json(json.dumps({"examples": [{"input": "x", "target_scores": scores}]}))


def test_archive_members_are_extracted_once_then_read_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    languages = multiemo.MULTIEMO_LANGUAGES
    archive = make_bigbench_archive(tmp_path / "bigbench-1.0.0.tar.gz", languages)
    monkeypatch.setattr(bigbench, "BIGBENCH_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    assert len(load_multiemo("de", archive=archive)) == 4
    # Every language of the level came out in the same pass; the archive is no longer needed.
    assert all(multiemo.multiemo_cache_path("text", lang).is_file() for lang in languages)
    assert not multiemo.multiemo_cache_path("sentence", "de").exists()
    archive.unlink()
    assert load_multiemo("ja", offline=True)[0].label == "positive"


def test_archive_without_the_members_is_a_format_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_bigbench_archive(tmp_path / "bigbench-1.0.0.tar.gz", ("en",))
    monkeypatch.setattr(bigbench, "BIGBENCH_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    with pytest.raises(DataFormatError, match="missing members"):
        load_multiemo("en", archive=archive)


def test_corrupted_archive_is_a_checksum_error(tmp_path: Path) -> None:
    archive = make_bigbench_archive(tmp_path / "bigbench-1.0.0.tar.gz", ("en",))
    with pytest.raises(ChecksumError, match=r"bigbench 1\.0\.0 source archive"):
        load_multiemo("en", archive=archive)


def test_offline_without_cache_says_what_to_download() -> None:
    with pytest.raises(SourceUnavailableError, match=r"pip download --no-deps bigbench==1.0.0.*--archive"):
        load_multiemo("en", offline=True)


def test_unknown_language_lists_multiemo_languages() -> None:
    with pytest.raises(SourceUnavailableError, match="expected one of: en, de, es, fr, it, ja, nl, pl, pt, ru, zh"):
        load_multiemo("sw", offline=True)


def test_unpacked_folder_is_read_in_place() -> None:
    assert len(load_multiemo("en", archive=FIXTURES / "bigbench")) == 4


def test_entailed_polarity_from_the_same_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adamergex.data.tasks import get_task

    english = {
        "examples": [
            {
                "input": "Fact: The door was found to be locked. Q: Was the door locked?",
                "target_scores": {"no": 0.0, "yes": 1.0},
            },
            {"input": "Fact: She failed to call. Q: Did she call?", "target_scores": {"no": 1.0, "yes": 0.0}},
        ]
    }
    hindi = {
        "examples": [{"input": "तथ्य: दरवाज़ा बंद था। सवाल: क्या दरवाज़ा बंद था?", "target_scores": {"नहीं": 0, "हां": 1}}]
    }
    archive = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for folder, content in (("entailed_polarity", english), ("entailed_polarity_hindi", hindi)):
            data = json.dumps(content, ensure_ascii=False).encode()
            info = tarfile.TarInfo(f"bigbench-1.0.0/bigbench/benchmark_tasks/{folder}/task.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(bigbench, "BIGBENCH_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    task = get_task("entailed_polarity")
    first, second = (task.render(item) for item in task.load("en", "test", archive=archive))
    assert first.prompt == "Fact: The door was found to be locked. Q: Was the door locked?\nA:"
    assert (first.choices, first.gold, second.gold) == ([" yes", " no"], 0, 1)
    archive.unlink()
    (item,) = task.load("hi", "test", offline=True)
    paper = task.render(item, "paper")
    assert paper.prompt.endswith("सवाल: क्या दरवाज़ा बंद था?\nउत्तर:") and paper.choices == [" हां", " नहीं"]
