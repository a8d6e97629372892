"""The fortunes source on a real ``.deb`` built here byte by byte (ar + control.tar + data.tar, as dpkg-deb
writes them): expected documents are written out by hand from the fixture files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from adamergex.cli import main
from adamergex.data.cache import ChecksumError, DataFormatError, SourceUnavailableError
from adamergex.data.reference import load_reference_source
from adamergex.data.sources import fortunes
from adamergex.data.sources.deb import ar_members, read_deb_tree, resolve_link
from adamergex.data.sources.fortunes import (
    FortunesPackage,
    FortunesSelection,
    clean_text,
    documents_cache_path,
    load_fortunes,
    package_documents,
    parse_fortune_file,
)

ROOT = "./usr/share/games/fortunes"
WITZE = "Erster Witz.\n%\nZweiter\nWitz.\n\t\t-- Autor\n%\n"
FILES: dict[str, bytes] = {
    f"{ROOT}/de/witze": WITZE.encode(),
    f"{ROOT}/de/witze.dat": b"\x00\x00\x00\x02\x00\x00\x00\x01binary index",
    f"{ROOT}/de/sprueche": b"Alte Fassung.\n",
    f"{ROOT}/de/sprueche.u8": "Übermut tut selten gut.\n%\n".encode(),
    f"{ROOT}/de/leer": b"Nur im Original.\n",
    f"{ROOT}/de/leer.u8": b"",
    f"{ROOT}/de/zwilling": WITZE.encode(),
    f"{ROOT}/de/asciiart": b" /\\_/\\\n( o.o )\n%\n",
    f"{ROOT}/de/off/schlimm": "Ein anstößiger Witz.\n%\n".encode(),
    f"{ROOT}/de/farbe": b"\x1b[32mGr\xc3\xbcn\x1b[m und _\x08f_\x08e_\x08t\r\n\x07Ende  \r\n%\r\n",
    f"{ROOT}/andere": b"Other package folder.\n%\n",
}
SYMLINKS = {f"{ROOT}/de/witze.u8": "witze", f"{ROOT}/de/kopie": "witze", f"{ROOT}/witze": "de/witze"}
HARDLINKS = {f"{ROOT}/de/hart": f"{ROOT}/de/witze"}
SELECTION = FortunesSelection("fortunes-de", "de", ("asciiart",))
# sorted names: farbe, hart (-> witze, read once), kopie/witze/zwilling (same file or bytes), leer, sprueche(.u8)
EXPECTED = [
    "Grün und fet\nEnde",
    "Erster Witz.",
    "Zweiter\nWitz.\n\t\t-- Autor",
    "Nur im Original.",
    "Übermut tut selten gut.",
]


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def _tarball(mode: str, files: dict[str, bytes], symlinks: dict[str, str], hardlinks: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in symlinks.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, target in hardlinks.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def build_deb(
    path: Path,
    files: dict[str, bytes] = FILES,
    symlinks: dict[str, str] = SYMLINKS,
    hardlinks: dict[str, str] = HARDLINKS,
    compression: str = "xz",
) -> Path:
    """A ``.deb``: ``debian-binary``, ``control.tar.xz`` and ``data.tar.<compression>`` in an ar archive."""
    control = _tarball("w:xz", {"./control": b"Package: fortunes-de\nVersion: 0.35-1\n"}, {}, {})
    mode = {"xz": "w:xz", "gz": "w:gz", "": "w"}.get(compression, "w")
    data = _tarball(mode, files, symlinks, hardlinks)
    suffix = f".{compression}" if compression else ""
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", control), (f"data.tar{suffix}", data)]
    path.write_bytes(b"!<arch>\n" + b"".join(_ar_member(name, payload) for name, payload in members))
    return path


@pytest.fixture
def deb(tmp_path: Path) -> Path:
    return build_deb(tmp_path / "fortunes-de_0.35-1_all.deb")


@pytest.fixture
def pinned(deb: Path, monkeypatch: pytest.MonkeyPatch) -> FortunesPackage:
    """Pin ``fortunes-de`` to the test package's sha256."""
    package = FortunesPackage("fortunes-de", "0.35-1", hashlib.sha256(deb.read_bytes()).hexdigest(), "GPL-2+")
    monkeypatch.setitem(fortunes.PACKAGES, "fortunes-de", package)
    return package


def test_ar_reader_and_link_resolution(deb: Path) -> None:
    assert list(ar_members(deb.read_bytes())) == ["debian-binary", "control.tar.xz", "data.tar.xz"]
    tree = read_deb_tree(deb, "usr/share/games/fortunes")
    assert tree["usr/share/games/fortunes/de/witze.u8"].target == "usr/share/games/fortunes/de/witze"
    assert resolve_link(tree, "usr/share/games/fortunes/witze") == "usr/share/games/fortunes/de/witze"
    assert resolve_link(tree, "usr/share/games/fortunes/de/hart") == "usr/share/games/fortunes/de/witze"
    with pytest.raises(DataFormatError, match="not a Debian package"):
        ar_members(b"PK\x03\x04 a zip file")


@pytest.mark.parametrize("compression", ["xz", "gz", ""])
def test_package_documents_by_hand(tmp_path: Path, compression: str) -> None:
    deb = build_deb(tmp_path / "fortunes-de_0.35-1_all.deb", compression=compression)
    documents, record = package_documents(deb, SELECTION)
    assert documents == EXPECTED
    files = [(entry["file"], entry["as"], entry["documents"]) for entry in record["files"]]
    assert files == [
        ("de/farbe", "farbe", 1),
        ("de/witze", "hart", 2),
        ("de/leer", "leer", 1),
        ("de/sprueche.u8", "sprueche.u8", 1),
    ]
    assert record["documents"] == 5 and record["characters"] == sum(len(text) for text in EXPECTED)


def test_zstd_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    deb = build_deb(tmp_path / "fortunes-de_0.35-1_all.deb", compression="zst")
    try:
        import zstandard  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(DataFormatError, match="zstd-compressed; install the zstandard package"):
            package_documents(deb, SELECTION)
    else:
        with pytest.raises(DataFormatError):  # the fixture's member is plain tar, not zstd
            package_documents(deb, SELECTION)


def test_legacy_encoding_is_an_error_naming_the_file(tmp_path: Path) -> None:
    deb = build_deb(tmp_path / "fortunes-de_0.35-1_all.deb", {f"{ROOT}/de/alt": "Grüße\n%\n".encode("latin-1")}, {}, {})
    with pytest.raises(DataFormatError, match=r"de/alt: not UTF-8 \(byte 2\)"):
        package_documents(deb, SELECTION)


def test_load_verifies_caches_and_records_metadata(deb: Path, pinned: FortunesPackage) -> None:
    corpus = load_fortunes("German", deb=deb)
    assert corpus.lang == "de" and corpus.documents == EXPECTED
    (package,) = corpus.metadata["packages"]
    assert (package["package"], package["version"], package["sha256"]) == ("fortunes-de", "0.35-1", pinned.sha256)
    assert [entry["file"] for entry in package["files"]] == ["de/farbe", "de/witze", "de/leer", "de/sprueche.u8"]
    header = json.loads(documents_cache_path("de").read_text(encoding="utf-8").splitlines()[0])
    assert header["documents"] == 5 and header["packages"][0]["sha256"] == pinned.sha256
    deb.unlink()  # later loads read the cached documents only
    again = load_reference_source("fortunes", "de", offline=True)
    assert again.documents == EXPECTED and again.metadata["packages"][0]["files"] == package["files"]


def test_a_changed_pin_rebuilds_from_the_kept_deb(deb: Path, pinned: FortunesPackage, tmp_path: Path) -> None:
    load_fortunes("de", deb=deb)
    cached = documents_cache_path("de")
    header = json.loads(cached.read_text(encoding="utf-8").splitlines()[0])
    header["packages"][0]["version"] = "0.34-1"  # as if written for another pinned version
    lines = cached.read_text(encoding="utf-8").splitlines()
    cached.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(
        SourceUnavailableError,
        match=r"not cached .* offline is set; if apt-get cannot locate it, refresh .* `apt-get update`.*"
        r" run `apt-get download",
    ):
        load_fortunes("de", offline=True)
    folder = tmp_path / "debs"
    folder.mkdir()
    deb.rename(folder / deb.name)
    assert load_fortunes("de", deb=folder, offline=True).documents == EXPECTED


def test_checksum_mismatch_and_unverified_text_is_not_cached(deb: Path, pinned: FortunesPackage) -> None:
    other = build_deb(deb.with_name("fortunes-de_0.36-1_all.deb"), {f"{ROOT}/de/neu": b"Neu.\n"}, {}, {})
    deb.unlink()
    with pytest.raises(ChecksumError, match="does not match the pinned"):
        load_fortunes("de", deb=other)
    assert load_fortunes("de", deb=other, verify=False).documents == ["Neu."]
    assert not documents_cache_path("de").exists()


def test_missing_apt_get_and_unknown_language(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get on PATH
    with pytest.raises(SourceUnavailableError) as error:
        load_fortunes("pl")
    message = str(error.value)
    assert "'apt-get' is not installed" in message and "apt-get download fortunes-pl=0.0.20130525-3" in message
    assert "fortunes-pl_0.0.20130525-3_all.deb" in message and "\n" not in message
    with pytest.raises(
        SourceUnavailableError, match="no Debian fortunes in language 'fr'; languages with fortunes: bg,"
    ):
        load_fortunes("French")


def test_failing_apt_get_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "apt-get"
    fake.write_text("#!/bin/sh\necho \"E: Version '$2' was not found\" >&2\nexit 100\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceUnavailableError, match=r"`apt-get download fortunes-ru=1.52-3.1` failed \(E: Version"):
        load_fortunes("ru")


def test_every_language_names_pinned_packages() -> None:
    for lang, selections in fortunes.FORTUNES_LANGUAGES.items():
        for selection in selections:
            package = fortunes.PACKAGES[selection.package]
            assert len(package.sha256) == 64 and int(package.sha256, 16) >= 0, lang
    assert fortunes.PACKAGES["fortunes"].filename == "fortunes_1%3a1.99.1-7.3_all.deb"


def test_clean_text_by_hand() -> None:
    assert clean_text("\x1b[1;33mBold\x1b[m text") == "Bold text"
    assert clean_text("_\x08W_\x08o\nB\x08Bold") == "Wo\nBold"
    assert clean_text("\x08line  \r\n\tindented\x07\r") == "line\n\tindented\n"


def test_parse_fortune_file_by_hand() -> None:
    text = "First.\n%\n\n%\nSecond\n  -- Someone\n% \n%%\nThird\n"
    assert parse_fortune_file(text) == ["First.", "Second\n  -- Someone", "%%\nThird"]


_LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30).map(str.rstrip)
_ENTRY = (
    st.lists(_LINE.filter(lambda line: line != "%"), min_size=1, max_size=5)
    .map(lambda lines: "\n".join(lines).strip("\n"))
    .filter(lambda entry: entry.strip() != "")
)


@given(st.lists(_ENTRY, max_size=8), st.booleans())
def test_parse_inverts_joining_entries_with_separators(entries: list[str], trailing: bool) -> None:
    text = "\n%\n".join(entries) + ("\n%\n" if trailing else "")
    assert parse_fortune_file(text) == entries


@given(st.text(max_size=300))
def test_parsed_entries_are_clean_whatever_the_input(text: str) -> None:
    for entry in parse_fortune_file(text):
        assert entry.strip() and entry == entry.strip("\n")
        assert all(line.rstrip() != "%" and line == line.rstrip() for line in entry.split("\n"))
        assert not any((ord(c) < 32 and c not in "\t\n") or c == "\x7f" for c in entry)


def test_cli_prepares_fortunes_from_a_supplied_deb(deb: Path, pinned: FortunesPackage, tmp_path: Path) -> None:
    out = tmp_path / "de.jsonl"
    args = ["data", "prepare", "reference", "--source", "fortunes", "--lang", "de", "--deb", str(deb)]
    result = CliRunner().invoke(main, [*args, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and "wrote 5 documents" in result.output
    assert [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()] == EXPECTED
    sidecar = json.loads(out.with_name(out.name + ".provenance.json").read_text(encoding="utf-8"))
    assert sidecar["source_metadata"]["packages"][0]["sha256"] == pinned.sha256
    listing = CliRunner(env={"COLUMNS": "250"}).invoke(main, ["data", "list"], catch_exceptions=False)
    (row,) = [line for line in listing.output.splitlines() if "Debian fortune cookies" in line]
    assert row.rstrip(" │").endswith("de")  # cached languages
