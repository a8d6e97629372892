"""Debian's fortune-cookie databases as general-domain reference text (quotes, jokes, anecdotes, poems).

Each language's text comes from pinned Debian packages (:data:`PACKAGES`), obtained with
``apt-get download PKG=VERSION`` or read from ``.deb`` files the user supplies, checked against the pinned
sha256 and read with Python alone (:mod:`adamergex.data.sources.deb`). Fortune files live under
``usr/share/games/fortunes/``; entries are separated by lines holding only ``%``.

What is read (:data:`FORTUNES_LANGUAGES` says which folder of which package, per language):

* the files directly inside the language's folder; never ``*.dat`` (binary indexes of ``strfile``), never an
  ``off`` folder (Debian's offensive sections: ``fortunes-es`` ships ``es/off/``; the offensive English and
  Italian fortunes are separate packages, ``fortunes-it-off``, that are not used), and never the few files
  that are not natural-language text (ASCII art) or not the language (Slovak in ``fortunes-cs``);
* a ``NAME.u8`` twin is preferred to ``NAME`` when it has content (it is a symlink to ``NAME`` in most
  packages, and an empty file in ``fortunes-pl``); links are followed and every file is read once, also when
  several names lead to it or two files have the same bytes.

Every file of the pinned packages is UTF-8; a file that is not (another version, supplied with
``verify=False``) is an error naming it, never guessed. Each entry is cleaned of terminal control: ANSI colour
sequences (``fortunes-zh``), overstrike (``_\\bX`` / ``X\\bX``: a backspace deletes the character before it) and
other control characters except tab and newline; CRLF becomes LF; trailing spaces and blank edge lines are
dropped. The file is cleaned first, then split, so what separates entries is what a terminal shows as ``%``.
Attribution lines (``-- Mark Twain``) are kept: they are natural text of the language and cutting
them by pattern would also cut lines of dialogue and poems.

One entry is one document. The documents of a language are cached as JSONL,
``<cache>/data/fortunes/<format>/<lang>.jsonl`` (a header line with the packages, versions, sha256, files and
counts, then ``{"text": ...}`` per document), and the verified ``.deb`` files in ``<cache>/data/fortunes/debs``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from adamergex.data.cache import DataFormatError, SourceUnavailableError, data_cache_dir, run_tool, verify_sha256
from adamergex.data.languages import normalize_language
from adamergex.data.sources.deb import DebEntry, read_deb_tree, resolve_link
from adamergex.files import atomic_write_bytes, atomic_write_text, sha256_file

FORTUNES_ROOT = "usr/share/games/fortunes"
#: version of the extraction rules; a cache written under other rules is rebuilt from the kept .deb files.
FORTUNES_FORMAT = "adamergex.fortunes/1"
_SEPARATOR = "%"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class FortunesPackage:
    """A pinned Debian package: name, version (with epoch), sha256 of the ``.deb`` and the text's licence."""

    name: str
    version: str
    sha256: str
    licence: str

    @property
    def spec(self) -> str:
        """``NAME=VERSION`` as ``apt-get download`` takes it."""
        return f"{self.name}={self.version}"

    @property
    def filename(self) -> str:
        """The file name ``apt-get download`` writes (``:`` of the epoch as ``%3a``)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_all.deb"


@dataclass(frozen=True)
class FortunesSelection:
    """Which files of a package hold a language's text.

    Attributes:
        package: key of :data:`PACKAGES`.
        folder: folder below ``usr/share/games/fortunes`` whose files are read ("" = the top level);
            sub-folders are not read.
        exclude: file names (without ``.u8``) that are not natural-language text of the language.
    """

    package: str
    folder: str
    exclude: tuple[str, ...] = ()


#: Checked 2026-11-30 with ``apt-get download`` (Debian bookworm); every sha256 was measured then.
PACKAGES: dict[str, FortunesPackage] = {
    package.name: package
    for package in (
        FortunesPackage(
            "fortunes",
            "1:1.99.1-7.3",
            "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5",
            "BSD (fortune-mod, University of California)",
        ),
        FortunesPackage(
            "fortunes-min",
            "1:1.99.1-7.3",
            "9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07",
            "BSD (fortune-mod, University of California)",
        ),
        FortunesPackage(
            "fortunes-de", "0.35-1", "03fe7a7912935bd3d4e02e38d79ef32a289097f8718d4488c409595abce067a0", "GPL-2+"
        ),
        FortunesPackage(
            "fortunes-es",
            "1.36",
            "54636edc1a4384093b68d1666c7e702ce42d1fcc8b5ab402d9646c328dcca899",
            "texts presumed public domain; packaging GPL-2+",
        ),
        FortunesPackage(
            "fortunes-it",
            "1.99-4.1",
            "675df6ecb00c3b67d06b39ab223ff17f1ef1d0ec82a7e40f989356a2eb61a97e",
            "public domain (freeware)",
        ),
        FortunesPackage(
            "fortunes-pl",
            "0.0.20130525-3",
            "39602aece2081a67c9e95ff7f6e8b0b8fc2cce971e920a31d04133d4ac007ad0",
            "GPL-2+",
        ),
        FortunesPackage(
            "fortunes-ru", "1.52-3.1", "2dc76af9c0e02e2926d36f88dcb685bb171fab8677e553a6def41efe8a551cc6", "GPL-2"
        ),
        FortunesPackage(
            "fortunes-zh", "2.98", "211c5ddee59d0ae74ce01cbfd02f7c8714740bae1835d5661eb2254edd739105", "GPL-3+"
        ),
        FortunesPackage(
            "fortunes-br", "20220821", "0a181b5fdf4f9d83dd519c4a50af2e68d88c85d27ab32f665c72e5fc67331a4c", "GPL-2+"
        ),
        FortunesPackage(
            "fortunes-mario",
            "0.21-1.1",
            "fef3607f943fc29f3539fef7986e6c743ee3694ae5788eddeb18a695c184d31c",
            "GPL-2",
        ),
        FortunesPackage(
            "fortunes-cs", "2.0.9-1.1", "5a38a15bcd58c6a2f777a1f2db8d51da901bc3d0147b2db3597c8a1b78acb447", "GPL-3+"
        ),
        FortunesPackage(
            "fortunes-bg", "1.4", "654be0aacc5d932b12a17cbd895e66813e3097f81e761d991c6958591e69825c", "GPL-1+"
        ),
        FortunesPackage(
            "fortunes-eo",
            "20020729b-1.1",
            "23e258836bd9c76c47c71f6a365aea469563748fd4c6737bb636328da97302bf",
            "public domain (Zamenhof, died 1917); digital edition GPL",
        ),
        FortunesPackage(
            "fortunes-ga", "0.10+nmu1", "2c113ea36a2173a9c704e2e5fd7e9d211e2ea44b618f928fc6e843233a5cdbaf", "BSD"
        ),
    )
}

#: ISO 639-1 code -> the package folders that hold its text.
FORTUNES_LANGUAGES: dict[str, tuple[FortunesSelection, ...]] = {
    "en": (FortunesSelection("fortunes", "", ("ascii-art",)), FortunesSelection("fortunes-min", "")),
    "de": (FortunesSelection("fortunes-de", "de", ("asciiart",)),),
    "es": (FortunesSelection("fortunes-es", "es"),),
    "it": (FortunesSelection("fortunes-it", "it", ("banner",)),),
    "pl": (FortunesSelection("fortunes-pl", "pl"),),
    "ru": (FortunesSelection("fortunes-ru", "ru"),),
    "zh": (FortunesSelection("fortunes-zh", ""),),
    "pt": (FortunesSelection("fortunes-br", ""), FortunesSelection("fortunes-mario", "", ("mario.arteascii",))),
    "cs": (FortunesSelection("fortunes-cs", "cs", ("klasik-sk",)),),
    "bg": (FortunesSelection("fortunes-bg", "bg"),),
    "eo": (FortunesSelection("fortunes-eo", "eo"),),
    "ga": (FortunesSelection("fortunes-ga", "ga"),),
}

DebSupply = str | Path | Sequence[str | Path] | None


@dataclass
class FortunesCorpus:
    """The documents of one language and where they come from (``metadata``: packages, files, counts)."""

    lang: str
    documents: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)


# -- parsing ----------------------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Text as a terminal shows it: CRLF/CR to LF, ANSI sequences removed, overstrike applied (a backspace
    deletes the character before it on its line), other control characters except tab and newline removed,
    trailing spaces of every line dropped."""
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if "\b" in text:
        kept: list[str] = []
        for character in text:
            if character == "\b":
                if kept and kept[-1] != "\n":
                    kept.pop()
            else:
                kept.append(character)
        text = "".join(kept)
    return "\n".join(_CONTROL.sub("", line).rstrip() for line in text.split("\n"))


def parse_fortune_file(text: str) -> list[str]:
    """The entries of a fortune file: after :func:`clean_text`, the blocks between lines that hold only
    ``%``, without blank lines at their edges; empty entries are dropped."""
    entries: list[str] = []
    block: list[str] = []
    for line in [*clean_text(text).split("\n"), _SEPARATOR]:
        if line == _SEPARATOR:
            entry = "\n".join(block).strip("\n")
            if entry.strip():
                entries.append(entry)
            block = []
        else:
            block.append(line)
    return entries


def select_fortune_files(tree: dict[str, DebEntry], selection: FortunesSelection) -> list[tuple[str, str]]:
    """``(name, resolved path)`` of the files to read from one package, sorted by name, each file once.

    The folder's direct children only (so never an ``off`` folder), no ``*.dat``, no excluded name; per
    name, the ``.u8`` twin when it leads to a non-empty file, else the plain file.
    """
    folder = "/".join(part for part in (FORTUNES_ROOT, selection.folder) if part)
    stems: set[str] = set()
    for path in tree:
        parent, _, name = path.rpartition("/")
        if parent != folder or name.endswith(".dat") or "off" in path.split("/"):
            continue
        stem = name.removesuffix(".u8")
        if stem not in selection.exclude:
            stems.add(stem)
    chosen: list[tuple[str, str]] = []
    seen_paths: set[str] = set()
    seen_content: set[str] = set()
    for stem in sorted(stems):
        for name in (f"{stem}.u8", stem):
            target = resolve_link(tree, f"{folder}/{name}")
            if target is None or not tree[target].data.strip():
                continue
            digest = sha256(tree[target].data).hexdigest()
            if target not in seen_paths and digest not in seen_content:
                seen_paths.add(target)
                seen_content.add(digest)
                chosen.append((name, target))
            break
    return chosen


def decode_fortune_file(data: bytes, origin: str) -> str:
    """UTF-8 text of a fortune file; anything else is a :class:`DataFormatError` naming the file."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(
            f"{origin}: not UTF-8 (byte {error.start}); adamergex reads UTF-8 fortune files only "
            "(the pinned package versions are UTF-8)"
        ) from None


def package_documents(deb: Path, selection: FortunesSelection) -> tuple[list[str], dict[str, Any]]:
    """The documents of one package's selection and a record of the files read (with counts)."""
    tree = read_deb_tree(deb, FORTUNES_ROOT)
    documents: list[str] = []
    files: list[dict[str, Any]] = []
    for name, target in select_fortune_files(tree, selection):
        entries = parse_fortune_file(decode_fortune_file(tree[target].data, f"{deb}:{target}"))
        documents.extend(entries)
        relative = target.removeprefix(FORTUNES_ROOT + "/")
        files.append({"file": relative, "as": name, "documents": len(entries), "characters": _chars(entries)})
    if not files:
        raise DataFormatError(
            f"{deb}: no fortune files under {FORTUNES_ROOT}/{selection.folder} (expected {selection.package})"
        )
    return documents, {"documents": len(documents), "characters": _chars(documents), "files": files}


def _chars(documents: Iterable[str]) -> int:
    return sum(len(document) for document in documents)


# -- obtaining the packages -------------------------------------------------------------------------------------


def fortunes_cache_dir() -> Path:
    """``<cache>/data/fortunes``."""
    return data_cache_dir("fortunes")


def documents_cache_path(lang: str) -> Path:
    """The cached documents of ``lang``."""
    return fortunes_cache_dir() / FORTUNES_FORMAT.replace("/", "-") / f"{lang}.jsonl"


def _how_to_supply(package: FortunesPackage) -> str:
    return (
        "if apt-get cannot locate it, refresh its package lists once with `apt-get update` (as root) and retry; "
        f"or run `apt-get download {package.spec}` on a Debian machine and pass the file {package.filename} "
        f"(sha256 {package.sha256[:16]}…), or a folder holding it, as deb=... / --deb"
    )


def fortunes_languages() -> list[str]:
    """The languages with fortunes, sorted."""
    return sorted(FORTUNES_LANGUAGES)


def _selections(lang: str) -> tuple[str, tuple[FortunesSelection, ...]]:
    code = normalize_language(lang)
    if code not in FORTUNES_LANGUAGES:
        raise SourceUnavailableError(
            f"no Debian fortunes in language {code!r}; languages with fortunes: {', '.join(fortunes_languages())}"
        )
    return code, FORTUNES_LANGUAGES[code]


def _supplied_debs(deb: DebSupply) -> list[Path]:
    if deb is None:
        return []
    paths = [deb] if isinstance(deb, str | Path) else list(deb)
    found: list[Path] = []
    for path in (Path(item).expanduser() for item in paths):
        if path.is_dir():
            found.extend(sorted(path.glob("*.deb")))
        elif path.is_file():
            found.append(path)
        else:
            raise SourceUnavailableError(f"{path} does not exist; expected a .deb file or a folder of .deb files")
    return found


def _supplied_for(package: FortunesPackage, supplied: list[Path], verify: bool) -> Path | None:
    """The supplied file of ``package``: one named ``<package>_*.deb`` (checked when ``verify``)."""
    candidates = [path for path in supplied if path.name.startswith(f"{package.name}_")]
    if not candidates:
        return None
    if not verify:
        return candidates[0]
    for path in candidates:
        if sha256_file(path) == package.sha256:
            return path
    verify_sha256(candidates[0], package.sha256, f"{package.spec}")
    return None


def _download(package: FortunesPackage, offline: bool) -> Path:
    """The verified ``.deb`` of ``package`` in the cache, fetched with ``apt-get download`` when missing."""
    cached = fortunes_cache_dir() / "debs" / package.filename
    if cached.is_file() and sha256_file(cached) == package.sha256:
        return cached
    if offline:
        raise SourceUnavailableError(
            f"{package.name} is not cached at {cached} and offline is set; {_how_to_supply(package)}"
        )
    with tempfile.TemporaryDirectory(prefix="adamergex-fortunes-") as scratch:
        folder = Path(scratch)
        run_tool(
            ["apt-get", "download", package.spec],
            cwd=folder,
            what=f"Debian package {package.spec}",
            how_to_supply=_how_to_supply(package),
        )
        downloaded = sorted(folder.glob(f"{package.name}_*.deb"))
        if not downloaded:
            raise SourceUnavailableError(f"apt-get did not produce {package.filename}; {_how_to_supply(package)}")
        verify_sha256(downloaded[0], package.sha256, package.spec)
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cached, downloaded[0].read_bytes(), force=True)
    return cached


def obtain_deb(package: str, *, deb: DebSupply = None, offline: bool = False, verify: bool = True) -> Path:
    """The ``.deb`` of pinned ``package``: a supplied one, else the cache, else ``apt-get download``."""
    pinned = PACKAGES[package]
    supplied = _supplied_for(pinned, _supplied_debs(deb), verify)
    return supplied if supplied is not None else _download(pinned, offline)


# -- the cached corpus ------------------------------------------------------------------------------------------


def _expected_packages(selections: tuple[FortunesSelection, ...]) -> list[dict[str, str]]:
    pinned = [PACKAGES[selection.package] for selection in selections]
    return [{"package": p.name, "version": p.version, "sha256": p.sha256} for p in pinned]


def _read_cache(lang: str, selections: tuple[FortunesSelection, ...]) -> FortunesCorpus | None:
    path = documents_cache_path(lang)
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        documents = [json.loads(line)["text"] for line in lines[1:]]
    except (OSError, IndexError, KeyError, json.JSONDecodeError):
        return None
    pins = [{key: entry[key] for key in ("package", "version", "sha256")} for entry in header.get("packages", [])]
    if header.get("format") != FORTUNES_FORMAT or pins != _expected_packages(selections):
        return None
    if len(documents) != header.get("documents"):
        return None
    return FortunesCorpus(lang=lang, documents=documents, metadata=header)


def _build(
    lang: str, selections: tuple[FortunesSelection, ...], deb: DebSupply, offline: bool, verify: bool
) -> tuple[FortunesCorpus, bool]:
    """The corpus read from the packages, and whether every package had its pinned sha256."""
    documents: list[str] = []
    packages: list[dict[str, Any]] = []
    all_pinned = True
    for selection in selections:
        pinned = PACKAGES[selection.package]
        path = obtain_deb(selection.package, deb=deb, offline=offline, verify=verify)
        digest = sha256_file(path)
        all_pinned = all_pinned and digest == pinned.sha256
        texts, record = package_documents(path, selection)
        documents.extend(texts)
        folder = f"{FORTUNES_ROOT}/{selection.folder}".rstrip("/")
        packages.append(
            {"package": pinned.name, "version": pinned.version, "sha256": digest, "licence": pinned.licence}
            | {"folder": folder, **record}
        )
    metadata = {
        "format": FORTUNES_FORMAT,
        "source": "fortunes",
        "lang": lang,
        "packages": packages,
        "documents": len(documents),
        "characters": _chars(documents),
    }
    return FortunesCorpus(lang=lang, documents=documents, metadata=metadata), all_pinned


def _write_cache(corpus: FortunesCorpus) -> None:
    lines = [json.dumps(corpus.metadata, ensure_ascii=False)]
    lines += [json.dumps({"text": document}, ensure_ascii=False) for document in corpus.documents]
    path = documents_cache_path(corpus.lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n", force=True)


def load_fortunes(lang: str, *, deb: DebSupply = None, offline: bool = False, verify: bool = True) -> FortunesCorpus:
    """The fortunes of ``lang``, from the cache or built from the packages (and then cached).

    Args:
        lang: ISO 639-1 code (any form :func:`~adamergex.data.languages.normalize_language` accepts).
        deb: ``.deb`` file(s) or folder(s) to read instead of downloading; files are matched to packages by
            name (``<package>_*.deb``) and checked against the pinned sha256 when ``verify``.
        offline: never run ``apt-get``; a package neither supplied nor cached is then an error.
        verify: check each ``.deb``'s sha256. Text read from an unverified package is not cached.
    """
    code, selections = _selections(lang)
    if deb is None:
        cached = _read_cache(code, selections)
        if cached is not None:
            return cached
    corpus, all_pinned = _build(code, selections, deb, offline, verify)
    if all_pinned:
        _write_cache(corpus)
    return corpus


def fortunes_documents(lang: str, *, deb: DebSupply = None, offline: bool = False, verify: bool = True) -> list[str]:
    """Reference-corpus documents: one per fortune, in ``lang`` (see :func:`load_fortunes`)."""
    return load_fortunes(lang, deb=deb, offline=offline, verify=verify).documents


def cached_fortunes_languages() -> list[str]:
    """Languages whose documents are cached under the current extraction rules."""
    return [lang for lang in fortunes_languages() if documents_cache_path(lang).is_file()]
