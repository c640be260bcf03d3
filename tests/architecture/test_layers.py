"""The layering rule, read from the imports themselves: no import runs from a lower layer up.

The pure library sits below the Dagster layer (`resources/`, `recs_assets/defs/`, `definitions.py`,
`cli.py`) and never imports Dagster. Inside the library each package may import only packages of a
lower layer (and itself), so no two packages can import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A module may import its own package and any package of a lower layer.
LAYERS: list[tuple[str, ...]] = [
    ("recs_assets.contract", "recs_assets.layout", "recs_assets.arguments"),
    ("recs_assets.settings", "recs_assets.storage", "recs_assets.profiling", "recs_assets.home_lock"),
    ("recs_assets.validation",),
    ("recs_assets.streaming",),
    ("recs_assets.sources",),
    ("recs_assets.features",),
    ("recs_assets.feature_store",),
    ("recs_assets.models",),
    ("recs_assets.training",),
    ("recs_assets.evaluation",),
    ("recs_assets.experiments",),
    ("recs_assets.search",),
    ("recs_assets.serving",),
    ("recs_assets.monitoring",),
    ("recs_assets.reports",),
    ("recs_assets.tracking",),
    ("resources",),
    ("recs_assets.defs",),
    ("recs_assets.definitions",),
    ("recs_assets.cli",),
]
DAGSTER_LAYER = ("resources", "recs_assets.defs", "recs_assets.definitions", "recs_assets.cli")
DAGSTER_PACKAGES = ("dagster", "dagster_mlflow", "dagster_pyspark", "dagster_postgres")


def _unit(module: str) -> str | None:
    """The layered unit a module belongs to (the longest matching name), or None for outside code."""
    matches = [name for layer in LAYERS for name in layer if module == name or module.startswith(name + ".")]
    return max(matches, key=len) if matches else None


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from recs_assets import sources` imports the package recs_assets.sources.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if _unit(f"{module}.{alias.name}")]
    return found


def _files(root: Path = ROOT) -> list[Path]:
    return sorted([*(root / "recs_assets").rglob("*.py"), *(root / "resources").rglob("*.py")])


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for path in _files(root):
        unit = _unit(_module_name(path, root))
        if unit is None:
            continue
        for line, module in _imports(path, root):
            where = f"{path.relative_to(root)}:{line}"
            if module.split(".")[0] in DAGSTER_PACKAGES and unit not in DAGSTER_LAYER:
                found.append(f"{where}: the pure library imports {module}")
                continue
            target = _unit(module)
            if target is None or target == unit:
                continue
            if _layer(target) > _layer(unit):
                found.append(f"{where}: {unit} (layer {_layer(unit)}) imports {module} from a higher layer ({_layer(target)})")
            elif _layer(target) == _layer(unit):
                found.append(f"{where}: {unit} imports {module}, a package of the same layer")
    return found


def test_every_library_module_is_on_a_layer():
    unplaced = [str(p.relative_to(ROOT)) for p in _files() if _unit(_module_name(p)) is None and p.name != "__init__.py"]
    top = [p for p in unplaced if p not in ("recs_assets/__init__.py",)]
    assert top == [], f"modules outside every layer (add them to LAYERS): {top}"


def test_no_import_runs_from_a_lower_layer_up_and_the_library_never_imports_dagster():
    problems = violations()
    assert problems == [], "layering violations:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from recs_assets.evaluation.metrics import evaluate\n", "higher layer"),
        ("import dagster as dg\n", "imports dagster"),
        ("from resources.home_folder import HomeFolder\n", "higher layer"),
    ],
)
def test_the_rule_catches_an_upward_import(tmp_path, source, expected):
    # A module planted in a copy of the models package that imports upward must be reported (the
    # checkout itself is never written to: other tests read it at the same time).
    (tmp_path / "resources").mkdir()
    planted = tmp_path / "recs_assets" / "models" / "_planted_for_layer_test.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    assert any(expected in problem and "_planted_for_layer_test" in problem for problem in violations(tmp_path))
