from __future__ import annotations

import pytest

from adamergex.data.languages import LANGUAGES, UnknownLanguageError, check_supported, normalize_language


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("de", "de"),
        ("DE", "de"),
        ("de-DE", "de"),
        ("pt_BR", "pt"),
        ("deu", "de"),
        ("German", "de"),
        ("swh", "sw"),
        ("zh-Hans", "zh"),
        (" sw ", "sw"),
    ],
)
def test_normalize_accepts_common_forms(given: str, expected: str) -> None:
    assert normalize_language(given) == expected


def test_unknown_language_lists_valid_codes() -> None:
    with pytest.raises(UnknownLanguageError) as error:
        normalize_language("klingon")
    message = str(error.value)
    assert "'klingon'" in message and "de, el, en" in message and "\n" not in message


def test_check_supported_lists_only_the_supported_languages() -> None:
    with pytest.raises(UnknownLanguageError, match=r"task 'x' has no language 'sw'; expected one of: de, en$"):
        check_supported("sw", ("en", "de"), "task 'x'")
    with pytest.raises(UnknownLanguageError, match=r"expected one of: de, en$"):
        check_supported("xx", ("en", "de"), "task 'x'")


def test_table_codes_are_two_letters_and_unique() -> None:
    assert all(len(code) == 2 and code == row.code for code, row in LANGUAGES.items())
    udhr_codes = [row.udhr for row in LANGUAGES.values() if row.udhr]
    assert len(udhr_codes) == len(set(udhr_codes))
