from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from adamergex.cli import main
from adamergex.data.reference import ReferenceCorpus
from adamergex.files import sha256_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def invoke(*args: str):
    return CliRunner(env={"COLUMNS": "250"}).invoke(main, ["data", *args], catch_exceptions=False)


def test_list_shows_sources_tasks_and_languages() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    for word in ("udhr", "multiemo (text)", "xnli", "pawsx", "Swahili", "swh", "chinese_simplified"):
        assert word in result.output


def test_prepare_task_writes_rendered_jsonl_with_provenance(multiemo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "de-test.jsonl"
    args = ["prepare", "task", "multiemo", "--lang", "de", "--split", "test", "--limit", "7"]
    result = invoke(*args, "--archive", str(multiemo_folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 7 and all(record["split"] == "test" and record["lang"] == "de" for record in records)
    first = records[0]
    assert first["prompt"] == f"Review: {first['fields']['text']}\nSentiment:"
    assert first["target"] == first["choices"][first["gold"]] == " " + first["fields"]["label_name"]
    sidecar = json.loads(out.with_name(out.name + ".provenance.json").read_text())
    assert sidecar["sha256"] == sha256_file(out) and sidecar["records"] == 7 and sidecar["limit"] == 7
    again = CliRunner().invoke(main, ["data", *args, "--archive", str(multiemo_folder), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output


def test_prepare_reference_with_and_without_tokenizer(tokenizer, tmp_path: Path) -> None:
    tokenizer_dir = tmp_path / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    udhr = str(FIXTURES / "udhr")
    text_out = tmp_path / "docs.jsonl"
    result = invoke(
        "prepare", "reference", "--lang", "en", "--archive", udhr, "--udhr-code", "tst", "--out", str(text_out)
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line)["text"] for line in text_out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 4 and lines[1] == "Article 1\nEvery test has the right to fail when the code is wrong."
    corpus_out = tmp_path / "corpus.jsonl"
    result = invoke(
        "prepare",
        "reference",
        "--source",
        "files",
        "--file",
        str(text_out),
        "--lang",
        "en",
        "--tokenizer",
        str(tokenizer_dir),
        "--chunk-tokens",
        "16",
        "--out",
        str(corpus_out),
    )
    assert result.exit_code == 0, result.output
    corpus = ReferenceCorpus.load(corpus_out)
    assert f"wrote {corpus.stats['chunks']} chunks" in result.output
    assert all(len(chunk) == 16 for chunk in corpus.train[:-1])


def test_show_prints_prompt_and_marks_gold(multiemo_folder: Path) -> None:
    result = invoke("show", "multiemo", "--lang", "pl", "--split", "dev", "-n", "2", "--archive", str(multiemo_folder))
    assert result.exit_code == 0
    assert result.output.count("⟨end of prompt⟩") == 2 and "Review: pl review" in result.output
    assert result.output.count("* choice") == 2


def test_user_errors_exit_2_with_one_line() -> None:
    result = CliRunner().invoke(main, ["data", "show", "nope", "--lang", "de"])
    assert result.exit_code == 2 and "unknown task 'nope'; expected one of: entailed_polarity, mgsm" in result.output
    result = CliRunner().invoke(main, ["data", "show", "xnli", "--lang", "de", "--level", "text"])
    assert result.exit_code == 2 and "--level apply to the bigbench tasks only" in result.output


def test_prepare_reference_passes_each_source_the_options_it_takes(tmp_path: Path, monkeypatch) -> None:
    """One rule for every source (its loader's option names): what each source received before the rule."""
    from adamergex.cli import data as cli_data

    seen: dict[str, dict[str, object]] = {}

    class Result:
        corpus = None
        documents = 0

    def fake_prepare(source: str, lang: str, out: Path, **kwargs: object) -> Result:
        seen[source] = {k: v for k, v in kwargs.items() if k not in cli_data_common}
        return Result()

    cli_data_common = {"tokenizer", "mode", "chunk_tokens", "chunk_words", "validation_fraction", "seed", "force"}
    monkeypatch.setattr(cli_data, "prepare_reference", fake_prepare)
    archive, deb, rows, text = (tmp_path / name for name in ("u.tgz", "f.deb", "wiki.jsonl", "t.txt"))
    for path in (archive, deb, rows, text):
        path.write_text("")
    every = ["--archive", str(archive), "--offline", "--udhr-code", "deu_1996", "--deb", str(deb)]
    every += ["--data-files", str(rows), "--file", str(text), "--text-field", "body", "--max-documents", "7"]
    for source in ("udhr", "fortunes", "huggingface", "files"):
        args = ["data", "prepare", "reference", "--source", source, "--lang", "de", "--out", str(tmp_path / "o")]
        result = CliRunner().invoke(main, [*args, *every])
        assert result.exit_code == 0, result.output
    assert seen == {
        "udhr": {"archive": archive, "offline": True, "code": "deu_1996"},
        "fortunes": {"offline": True, "deb": [deb]},
        "huggingface": {"data_files": [str(rows)], "max_documents": 7},
        "files": {"paths": [text], "text_field": "body"},
    }
    missing = CliRunner().invoke(
        main, ["data", "prepare", "reference", "--source", "files", "--lang", "de", "--out", "x"]
    )
    assert missing.exit_code != 0 and "--source files needs at least one --file" in missing.output
