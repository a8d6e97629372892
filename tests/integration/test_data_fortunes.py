"""The fortunes source against the real Debian package: ``apt-get download fortunes-de=0.35-1`` into a fresh
cache, its pinned sha256, and the document count measured when the version was pinned (docs/data.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adamergex.data.sources.fortunes import PACKAGES, documents_cache_path, fortunes_cache_dir, load_fortunes
from adamergex.files import sha256_file

pytestmark = pytest.mark.integration


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get (a Debian-based machine)")
def test_fortunes_de_from_apt_get_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAMERGEX_CACHE", str(tmp_path))
    corpus = load_fortunes("de")
    package = PACKAGES["fortunes-de"]
    deb = fortunes_cache_dir() / "debs" / package.filename
    assert deb.is_file() and sha256_file(deb) == package.sha256
    assert package.sha256 == "03fe7a7912935bd3d4e02e38d79ef32a289097f8718d4488c409595abce067a0"
    assert len(corpus.documents) == corpus.metadata["documents"] == 18_728
    assert corpus.metadata["characters"] == 2_856_843
    assert len(corpus.metadata["packages"][0]["files"]) == 48  # 49 files in de/, less asciiart
    assert not any(entry["file"].startswith("de/off/") for entry in corpus.metadata["packages"][0]["files"])
    assert documents_cache_path("de").is_file()
    assert load_fortunes("de", offline=True).documents == corpus.documents


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get (a Debian-based machine)")
def test_fortunes_es_for_spanish_as_source_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spanish reference text for a run with ``source_lang: es`` (docs/data.md's counts, measured at pinning)."""
    monkeypatch.setenv("ADAMERGEX_CACHE", str(tmp_path))
    corpus = load_fortunes("es")
    assert len(corpus.documents) == corpus.metadata["documents"] == 10_788
    assert corpus.metadata["characters"] == 880_423
    files = corpus.metadata["packages"][0]["files"]
    assert len(files) == 25 and not any(entry["file"].startswith("es/off/") for entry in files)
