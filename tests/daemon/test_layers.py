"""Who may import whom (issue 13): the daemon and its clients meet in terway.rpc, never in each
other. Read from the source (the AST of each file, imports inside functions included), so a
lazy import cannot slip past."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TERWAY = Path(__file__).resolve().parents[2] / "terway"


def imported(path: Path, root: Path = TERWAY.parent) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path`` (a file under ``root``);
    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a module)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((TERWAY / folder).rglob("*.py")):
        for line, name in imported(path, TERWAY.parent):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(TERWAY.parent)}:{line}: {name}")
    return out


def test_the_walk_sees_every_form_of_import(tmp_path: Path) -> None:
    """The checker itself: plain, from-, aliased, relative and function-level imports."""
    probe = tmp_path / "terway" / "daemon" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import terway.cli.main\nfrom terway import cli\n"
                     "def f():\n    from ..cli import admin as a\n    from . import server\n")
    got = {name for _, name in imported(probe, tmp_path)}
    assert {"terway.cli.main", "terway.cli", "terway.cli.admin", "terway.daemon.server"} <= got
    real = {name for _, name in imported(TERWAY / "daemon" / "server.py")}
    assert {"terway.rpc.admin", "terway.rpc.messages"} <= real


def test_no_daemon_module_imports_the_cli() -> None:
    assert offenders("daemon", ("terway.cli",)) == []


def test_the_protocol_depends_on_neither_end() -> None:
    assert offenders("rpc", ("terway.cli", "terway.daemon", "terway.cni")) == []


def test_the_cli_and_the_plugin_do_not_import_the_daemon() -> None:
    assert offenders("cli", ("terway.daemon",)) == []
    assert offenders("cni", ("terway.daemon", "terway.cli")) == []


def test_the_rpc_package_init_imports_nothing() -> None:
    """The plugin pays for terway/rpc/__init__.py on every ADD/DEL (it imports
    terway.rpc.cnicodec); keep it a docstring."""
    tree = ast.parse((TERWAY / "rpc" / "__init__.py").read_text())
    assert [type(n).__name__ for n in tree.body] == ["Expr"]
