"""Synthetic MultiEmo files in bigbench's exact format, with the real item counts, for tests of any area
(importable from any test: ``from synthetic_multiemo import write_multiemo_folder``)."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = ("positive", "negative", "neutral", "ambivalent")


def synthetic_label(index: int) -> str:
    """The label sequence of the synthetic MultiEmo files (the same in every aligned language)."""
    return LABELS[(index * 7 + index // 3) % 4]


def write_multiemo_folder(root: Path, languages: dict[str, int], level: str = "text") -> Path:
    """``root/all_<level>_<lang>/task.json`` in bigbench's format with ``count`` items per language.

    Aligned languages repeat the English label sequence; Polish (8,216 items at text level) has one extra,
    untranslated item at 6,428, like the real data.
    """
    for lang, count in languages.items():
        examples = []
        for index in range(count):
            if lang == "pl" and count == 8_216:
                aligned = None if index == 6_428 else (index if index < 6_428 else index - 1)
            else:
                aligned = index
            label = "neutral" if aligned is None else synthetic_label(aligned)
            examples.append(
                {
                    "input": f"{lang} review {index} (aligned {aligned})",
                    "target_scores": {name: int(name == label) for name in LABELS},
                }
            )
        folder = root / f"all_{level}_{lang}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "task.json").write_text(json.dumps({"name": folder.name, "examples": examples}), encoding="utf-8")
    return root
