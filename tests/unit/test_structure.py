"""The layout's rules, checked on the source: dependencies point down only, and one home per helper.

Layers, top to bottom (README, "Development")::

    cli                                   (over the package root, which re-exports the public API)
    pipeline
    merging · training · evaluation
    adapters · data · models
    files · tensors · provenance · threads   (over errors)

A module may import its own package and any layer below its own, never a layer above nor a sibling package of
its own layer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "adamergex"
LAYERS: dict[str, int] = {
    "errors": 0,
    "files": 1,
    "tensors": 1,
    "provenance": 1,
    "threads": 1,
    "adapters": 2,
    "data": 2,
    "models": 2,
    "merging": 3,
    "training": 3,
    "evaluation": 3,
    "pipeline": 4,
    "__init__": 5,
    "cli": 6,
    "__main__": 7,
}


def _unit(module: str) -> str:
    """The layer unit of a dotted module name inside the package (``adamergex.merging.lora`` → ``merging``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``adamergex`` import in ``path``, function-local ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "adamergex"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "adamergex":
            if node.module == "adamergex":  # ``from adamergex import merging`` names a submodule, else the root
                found += [(node.lineno, f"adamergex.{a.name}" if a.name in LAYERS else "adamergex") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer() -> None:
    units = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in _modules()}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS (and to the README's layer list)"


def test_dependencies_point_down_only() -> None:
    wrong = []
    for path in _modules():
        relative = path.relative_to(PACKAGE)
        importer = relative.parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = _unit(module)
            if target == importer:
                continue
            if LAYERS[target] >= LAYERS[importer]:
                wrong.append(
                    f"{relative}:{line}: {importer} (layer {LAYERS[importer]}) imports {module} "
                    f"(layer {LAYERS[target]})"
                )
    assert wrong == []


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a lower layer importing a higher one is found (inside a function too)."""
    source = tmp_path / "io.py"
    source.write_text("def f():\n    from adamergex.merging.lora import concat_factors\n")
    assert [(line, _unit(module)) for line, module in _imports(source)] == [(2, "merging")]


#: What only ``adamergex.files`` may do: write to a temporary name and rename it into place.
_ATOMIC_PRIMITIVES = re.compile(r"os\.replace\(|tempfile\.mkstemp\(|tempfile\.mkdtemp\(|\.rename\(|\.replace\(\w+\)")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_files_py_renames_into_place(path: Path) -> None:
    if path.name == "files.py" and path.parent == PACKAGE:
        return
    hits = [line for line in path.read_text(encoding="utf-8").splitlines() if _ATOMIC_PRIMITIVES.search(line)]
    allowed = {"downloaded.replace(cached)"}  # moves a finished download out of a scratch folder on the same disk
    assert [line.strip() for line in hits if not any(a in line for a in allowed)] == []
