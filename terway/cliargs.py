"""What every console script's argparse shares (terwayd, terway-cli, terway-emulator,
terway-sim): ``--version``, defaults shown in ``--help``, and help text free of reST markup.

Docstrings here are reST-flavoured (double backquotes, ``:role:`x```); a description or help
string taken from one would show that markup to the user, so the formatter strips it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from typing import Any

DISTRIBUTION = "terway-py"

_DOUBLE = re.compile(r"``(.+?)``", re.S)
_ROLE = re.compile(r":[a-z][a-z:-]*:`([^`]+)`")
_SINGLE = re.compile(r"`([^`\n]+)`")


def package_version() -> str:
    """The installed distribution's version (importlib.metadata), or ``unknown`` when this
    checkout runs uninstalled."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def plain(text: str) -> str:
    """reST inline markup → plain text: double backquotes, roles, single backquotes."""
    return _SINGLE.sub(r"\1", _ROLE.sub(r"\1", _DOUBLE.sub(r"\1", text)))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` after a flag's help unless the help already names its default
    (or there is none to show: ``None``, ``False``, an empty list), and strips reST markup.
    Descriptions keep their line breaks (usage examples)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or not _has_default(action):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"

    def _expand_help(self, action: argparse.Action) -> str:
        return plain(super()._expand_help(action))

    def _format_text(self, text: str) -> str:
        return plain(super()._format_text(text))


def _has_default(action: argparse.Action) -> bool:
    default = action.default
    if default is None or default is argparse.SUPPRESS or default is False or default == []:
        return False
    if isinstance(action, argparse._StoreConstAction | argparse._HelpAction |
                  argparse._VersionAction):
        return False
    return bool(action.option_strings) or action.nargs in ("?", "*")


class _Version(argparse.Action):
    """``--version``: ``PROG VERSION`` on stdout, exit 0; the version is looked up only then."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog} {package_version()}")
        parser.exit(0)


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action=_Version,
                        help=f"print the {DISTRIBUTION} version and exit")


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand's parser, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) not in seen:          # aliases share one parser
                    seen.add(id(sub))
                    yield from parsers(sub)


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give the parser ``--version`` and the shared formatter on it and every subcommand."""
    add_version(parser)
    for p in parsers(parser):
        p.formatter_class = HelpFormatter
    return parser
