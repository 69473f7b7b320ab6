"""One import style in the tests: every helper as ``tests.<area>.<module>``.

Relative imports and bare names (``from datapath.topology import …``) resolve only through
pytest's rootdir insertion, which loads the same file under two names when styles mix.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _local_names() -> set[str]:
    names = {p.stem for p in TESTS.rglob("*.py")} | {p.name for p in TESTS.iterdir() if p.is_dir()}
    return names - {"__init__", "__pycache__", "emulator"}   # `emulator` is the product package


def test_every_test_directory_is_a_package() -> None:
    missing = [str(d.relative_to(TESTS)) for d in TESTS.rglob("*")
               if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
               and not (d / "__init__.py").exists()]
    assert not missing


def test_helpers_are_imported_as_tests_dot_area() -> None:
    local, bad = _local_names(), []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = node.module or ""
                if node.level or name.split(".")[0] in local:
                    bad.append(f"{path.relative_to(TESTS)}:{node.lineno} from "
                               f"{'.' * node.level}{name}")
            elif isinstance(node, ast.Import):
                bad += [f"{path.relative_to(TESTS)}:{node.lineno} import {a.name}"
                        for a in node.names if a.name.split(".")[0] in local]
    assert not bad, bad
