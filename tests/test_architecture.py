"""The module map of docs/ARCHITECTURE.md holds: the orchestrator sits at the bottom, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import vidcam

PACKAGE = Path(vidcam.__file__).resolve().parent
MAX_LINES = 600


def imported_modules(path: Path) -> set[str]:
    """Every ``vidcam...`` module a file imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("vidcam")}


def test_only_the_batch_runner_imports_the_pipeline():
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "vidcam.pipeline" in imported_modules(path)
    }
    assert importers == {"batch.py"}  # the CLI and notebooks both go through vidcam.api, which calls batch


def test_training_data_does_not_import_the_flow_estimators():
    assert not any(name.startswith("vidcam.flow.estimate") for name in imported_modules(PACKAGE / "training" / "data.py"))


def test_no_module_is_over_the_size_limit():
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
