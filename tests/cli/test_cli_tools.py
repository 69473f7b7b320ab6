"""Every console script as a command-line tool (issue 13): --version, help text, -o yaml,
human Blocked Until, and nox running this checkout's tools."""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import dataclasses
import io
import json
import re
import tomllib
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from terway import cliargs
from terway.cli import main as cli_main, render
from terway.rpc import admin
from tests.daemon.daemon_harness import World, run, running_daemon

ROOT = Path(__file__).resolve().parents[2]
VERSION = metadata.version("terway-py")


def _entry_points() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts: dict[str, str] = data["project"]["scripts"]
    return scripts


def _main_of(target: str) -> Callable[[Sequence[str]], int]:
    module, _, attr = target.partition(":")
    mod = __import__(module, fromlist=[attr])
    fn: Callable[[Sequence[str]], int] = getattr(mod, attr)
    return fn


def _run(fn: Callable[[Sequence[str]], int], argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = fn(argv)
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("script", sorted(_entry_points()))
def test_every_console_script_prints_the_package_version(script: str) -> None:
    code, out, err = _run(_main_of(_entry_points()[script]), ["--version"])
    assert code == 0, err
    assert out.splitlines()[0] == f"{script} {VERSION}"


def test_install_cni_prints_the_version_too() -> None:
    from terway.daemon import install

    code, out, _ = _run(install.main, ["--version"])
    assert (code, out.strip()) == (0, f"terwayd install-cni {VERSION}")


def test_the_cni_plugins_version_command_stays_the_cni_one() -> None:
    from terway.cni import main as cni

    code, out, _ = cni.run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert code == 0 and json.loads(out)["supportedVersions"]
    assert VERSION not in out


def _all_parsers() -> list[argparse.ArgumentParser]:
    from emulator import cli as emulator_cli
    from simulator import cli as sim_cli
    from terway.daemon import install, main as daemon_main

    tops = [daemon_main.build_parser(), install.build_parser(), cli_main.build_parser(),
            emulator_cli.build_parser(), sim_cli.build_parser()]
    return [p for top in tops for p in cliargs.parsers(top)]


PARSERS = _all_parsers()
REST = re.compile(r"``|:[a-z]+:`|`[^`\s]+`")


@pytest.mark.parametrize("parser", PARSERS, ids=[p.prog for p in PARSERS])
def test_help_has_text_for_every_flag_shows_defaults_and_no_markup(
        parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert not REST.search(text), REST.search(text)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{parser.prog} {choice.dest}: no help"
            continue
        assert action.help, f"{parser.prog} {name}: no help"
        shown = formatter._expand_help(action)
        default = action.default
        if default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
            assert "default" in shown.lower(), f"{parser.prog} {name}: default not shown"


def test_markup_is_stripped_from_descriptions() -> None:
    assert cliargs.plain("``terway-sim``: see :mod:`simulator` and `x`") == \
        "terway-sim: see simulator and x"


def test_cli_yaml_output_is_the_json_reply(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=world.eni_conf(min_pool_size=2)) as d:
            await d.alloc("web-0")
            for verb in ("pool", "list", "eni", "metadata"):
                code, out_json, _ = await asyncio.to_thread(
                    _run, cli_main.main, ["--socket", d.socket, "-o", "json", verb])
                assert code == 0
                code, out_yaml, _ = await asyncio.to_thread(
                    _run, cli_main.main, ["--socket", d.socket, "-o", "yaml", verb])
                assert code == 0
                assert yaml.safe_load(out_yaml) == json.loads(out_json), verb
                assert not out_yaml.lstrip().startswith(("{", "["))

    run(scenario())


def test_blocked_until_is_a_utc_time_and_a_countdown() -> None:
    from terway.daemon.adminapi import _blocked

    until, utc, left = _blocked(1000.0, now=958.0, wall=1_700_000_000.0)
    assert (until, utc, left) == (1000.0, "2023-11-14T22:14:02Z", 42.0)
    assert _blocked(None, now=1.0, wall=2.0) == (None, "", None)
    reply = admin.PoolReply(4, 1, 3, 0, 0, 0, 0, 1, enis=[
        admin.EniSummary("eni-1", "00:16:3e:00:00:01", "vsw-1", "InUse", 4, 1,
                         until, utc, left),
        admin.EniSummary("eni-2", "00:16:3e:00:00:02", "vsw-1", "InUse", 4, 0,
                         900.0, "2023-11-14T22:11:40Z", -100.0),
        admin.EniSummary("eni-3", "00:16:3e:00:00:03", "vsw-1", "InUse", 4, 0)])
    wire = json.loads(json.dumps(dataclasses.asdict(reply)))
    text = render.pool(admin.from_dict(admin.PoolReply, wire, "result"))
    rows = {ln.split(" | ")[0]: ln.split(" | ")[-1] for ln in text.splitlines()
            if ln.startswith("eni-")}
    assert rows == {"eni-1": "2023-11-14T22:14:02Z (in 42s)",
                    "eni-2": "2023-11-14T22:11:40Z (expired)", "eni-3": ""}
    assert render.duration(570) == "9m30s" and render.duration(7500) == "2h5m"


def test_nox_sessions_run_this_checkouts_tools() -> None:
    """A console script on PATH is whichever checkout was installed last; nox must not call one."""
    scripts = set(_entry_points())
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    consts: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                consts[node.targets[0].id] = ast.literal_eval(node.value)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "run"]
    assert calls
    for call in calls:
        first = call.args[0]
        if isinstance(first, ast.Starred) and isinstance(first.value, ast.Name):
            program = consts[first.value.id]
            program = program[0] if isinstance(program, tuple | list) else program
        else:
            program = ast.literal_eval(first)
        assert program not in scripts, f"noxfile.py:{call.lineno} runs the console script " \
                                       f"{program!r}"
