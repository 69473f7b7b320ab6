"""docs/upstream.md stays true: its tables are parsed and every row is checked against the code.

- eni_conf: each row's Sample is parsed by ``parse_eni_conf`` and must do what its Status says;
  every key of upstream's ``Config`` struct has a row; every key we read is in the table or in
  docs/config.md's "Our additions".
- Metrics, terway-cli, annotations, events, CNI codes: what a row says exists exists (and what it
  says is not there is not), both ways where the code can be listed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

import terway.cni.config as cni_config
from terway.cli.main import build_parser
from terway.config import ConfigError, EniConf, parse_eni_conf
from terway.config.eniconf import PREFIX_COUNTS, UNAVAILABLE_FEATURES, UPSTREAM_UNUSED
from terway.daemon.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "upstream.md"
CONFIG_DOC = ROOT / "docs" / "config.md"
STATUSES = ("same", "ours better", "refused", "not implemented", "n/a")
UNKNOWN = "eni_conf.{}: unknown field, ignored"

# Every json tag of upstream's Config struct (types/daemon/config.go at 89aadf8b), in its order.
UPSTREAM_KEYS = (
    "version", "access_key", "access_secret", "region_id", "credential_path", "service_cidr",
    "vswitches", "eni_tags", "max_pool_size", "min_pool_size", "ip_warm_up_size",
    "idle_ip_reclaim_after", "idle_ip_reclaim_batch_size", "idle_ip_reclaim_interval",
    "idle_ip_reclaim_jitter_factor", "min_eni", "max_eni", "prefix", "security_group",
    "security_groups", "eni_cap_ratio", "eni_cap_shift", "vswitch_selection_policy",
    "eni_selection_policy", "ip_stack", "enable_eni_trunking", "enable_erdma",
    "custom_stateful_workload_kinds", "ipam_type", "backoff_override", "extra_routes",
    "disable_device_plugin", "eni_tag_filter", "eni_tag_block_list", "kube_client_qps",
    "kube_client_burst", "resource_group_id", "rate_limit", "enable_patch_pod_ips",
    "ip_pool_sync_period", "enable_ip_prefix", "ipv4_prefix_count", "ipv6_prefix_count",
)


@dataclasses.dataclass(frozen=True)
class Row:
    section: str
    name: str
    cells: dict[str, str]

    @property
    def status(self) -> str:
        return self.cells["Status"]

    @property
    def ours(self) -> str:
        return self.cells["terway-py"]

    def __str__(self) -> str:
        return f"docs/upstream.md, {self.section}, row {self.name!r} ({self.status})"


def _split(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables(text: str, level: str = "## ") -> dict[str, tuple[list[str], list[list[str]]]]:
    """First table under each heading of ``level``: heading → (header, rows of cells)."""
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith(level):
            section = line[len(level):].strip()
        elif line.startswith("#"):
            section = None                      # a deeper or shallower heading ends the section
        elif section is not None and line.startswith("|"):
            if section not in tables:
                tables[section] = (_split(line), [])
            elif not set(line.replace("|", "").strip()) <= set("-: "):
                tables[section][1].append(_split(line))
        elif section in tables and line.strip():
            section = None                      # only the first table of a section
    return tables


def _name(cell: str) -> str:
    m = re.match(r"`([^`]+)`", cell)
    assert m, f"first cell {cell!r} does not start with a name in backticks"
    return m.group(1)


def _rows(section: str) -> list[Row]:
    tables = _tables(DOC.read_text())
    assert section in tables, f"docs/upstream.md has no table under '## {section}'"
    header, rows = tables[section]
    assert header[1:4] == ["Upstream", "terway-py", "Status"], f"{section}: header {header}"
    out = []
    for cells in rows:
        assert len(cells) == len(header), f"{section}: row {cells[0]!r} has {len(cells)} cells, " \
            f"the header {len(header)} (a '|' inside a cell?)"
        out.append(Row(section, _name(cells[0]), dict(zip(header, cells, strict=True))))
    assert out, f"docs/upstream.md: the table under '## {section}' is empty"
    return out


def _params(section: str) -> list[Any]:
    return [pytest.param(row, id=row.name) for row in _rows(section)]


def _check_status(row: Row) -> None:
    assert row.status in STATUSES, f"{row}: status must be one of {STATUSES}"


def _source(*globs: str) -> str:
    return "\n".join(p.read_text() for g in globs for p in sorted((ROOT / "terway").glob(g)))


# -- eni_conf ---------------------------------------------------------------------------------

def _samples(row: Row) -> list[Any]:
    spans = re.findall(r"`([^`]*)`", row.cells.get("Sample", ""))
    try:
        return [json.loads(s) for s in spans]
    except ValueError as exc:
        raise AssertionError(f"{row}: Sample {spans} is not JSON ({exc})") from None


def _mentions(warnings: tuple[str, ...], key: str) -> list[str]:
    return [w for w in warnings if re.search(rf"\b{re.escape(key)}\b", w)]


@pytest.mark.parametrize("row", _params("eni_conf keys"))
def test_eniconf_row_does_what_its_status_says(row: Row) -> None:
    _check_status(row)
    key, samples = row.name, _samples(row)
    if row.status == "refused":
        assert len(samples) == 2, f"{row}: Sample needs the refused ('on') and accepted " \
            "('off') value"
        on, off = samples
        try:
            parse_eni_conf({key: on})
        except ConfigError as exc:
            problems = exc.problems
        else:
            raise AssertionError(f"{row}: {key}={on!r} is accepted, the row says refused")
        assert any(p.startswith(f"eni_conf.{key}:") for p in problems), \
            f"{row}: {key}={on!r} was refused, but not naming eni_conf.{key}: {problems}"
        conf = parse_eni_conf({key: off})
        assert not _mentions(conf.warnings, key), f"{row}: {key}={off!r} warns: {conf.warnings}"
        return
    assert len(samples) == 1, f"{row}: Sample needs exactly one value, has {samples}"
    try:
        conf = parse_eni_conf({key: samples[0]})
    except ConfigError as exc:
        raise AssertionError(f"{row}: {key}={samples[0]!r} is refused: {exc.problems}") from None
    if row.status in ("same", "ours better"):
        assert not _mentions(conf.warnings, key), \
            f"{row}: {key}={samples[0]!r} warns: {conf.warnings}"
    elif row.status == "not implemented":
        assert conf.warnings == (UNKNOWN.format(key),), \
            f"{row}: want only the warning {UNKNOWN.format(key)!r}, got {conf.warnings}"
    else:
        raise AssertionError(f"{row}: every upstream key concerns the node; n/a is not a status "
                             "for an eni_conf key")


def test_every_upstream_key_has_one_row() -> None:
    names = [row.name for row in _rows("eni_conf keys")]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"docs/upstream.md, eni_conf keys: rows repeated: {dupes}"
    missing = [k for k in UPSTREAM_KEYS if k not in names]
    assert not missing, f"docs/upstream.md, eni_conf keys: upstream keys without a row: {missing}"
    extra = [n for n in names if n not in UPSTREAM_KEYS]
    assert not extra, (f"docs/upstream.md, eni_conf keys: rows {extra} are not upstream keys "
                       "(ours belong in docs/config.md's 'Our additions')")


def _our_additions() -> list[str]:
    tables = _tables(CONFIG_DOC.read_text(), level="### ")
    assert "Our additions" in tables, "docs/config.md has no table under '### Our additions'"
    return [_name(cells[0]) for cells in tables["Our additions"][1]]


def _keys_we_read() -> set[str]:
    return {f.name for f in dataclasses.fields(EniConf) if f.name != "warnings"} | set(
        UNAVAILABLE_FEATURES) | set(UPSTREAM_UNUSED) | set(PREFIX_COUNTS)


def test_every_key_we_read_is_documented() -> None:
    documented = {row.name for row in _rows("eni_conf keys")} | set(_our_additions())
    undocumented = sorted(_keys_we_read() - documented)
    assert not undocumented, ("keys parse_eni_conf reads but neither docs/upstream.md's eni_conf "
                              f"table nor docs/config.md's 'Our additions' lists: {undocumented}")


@pytest.mark.parametrize("key", sorted(set(UPSTREAM_KEYS) | {"daemon_mode", "pool_policy"}))
def test_keys_we_read_are_known_to_the_reader(key: str) -> None:
    """The reader's own view agrees with ``_keys_we_read``: a key it reads is never 'unknown'."""
    unknown = parse_eni_conf({key: None}).warnings == (UNKNOWN.format(key),)
    assert unknown == (key not in _keys_we_read()), \
        f"eni_conf.{key}: reader says unknown={unknown}, EniConf fields say the opposite"


def test_our_additions_are_read() -> None:
    for key in _our_additions():
        assert key in _keys_we_read(), f"docs/config.md 'Our additions' row {key!r}: not read"
        assert key not in UPSTREAM_KEYS, f"docs/config.md 'Our additions' row {key!r} is upstream's"


# -- metrics ----------------------------------------------------------------------------------

def _metric_names() -> set[str]:
    return {family.name for family in Metrics().registry.collect()}


@pytest.mark.parametrize("row", _params("Metrics"))
def test_metric_row(row: Row) -> None:
    _check_status(row)
    exported = row.name in _metric_names()
    if row.ours.startswith("Not exported"):
        assert not exported, f"{row}: says 'Not exported' but Metrics().registry has it"
    else:
        assert exported, f"{row}: not in Metrics().registry ({sorted(_metric_names())})"
        assert row.status != "n/a", f"{row}: we export it, so it is not n/a"


def test_every_metric_we_export_has_a_row() -> None:
    listed = {row.name for row in _rows("Metrics")}
    missing = sorted(_metric_names() - listed)
    assert not missing, f"docs/upstream.md, Metrics: exported but not listed: {missing}"


# -- terway-cli -------------------------------------------------------------------------------

def _cli() -> tuple[set[str], list[tuple[str, ...]]]:
    parser = build_parser()
    commands: set[str] = set()
    options: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands |= set(action.choices)
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            options.append(tuple(action.option_strings))
    return commands, options


@pytest.mark.parametrize("row", _params("terway-cli"))
def test_cli_row(row: Row) -> None:
    _check_status(row)
    commands, options = _cli()
    if row.name.startswith("-"):
        present = any(row.name in strings for strings in options)
        absent_word = "No such option"
    else:
        present = row.name in commands
        absent_word = "No such command"
    if row.ours.startswith(absent_word):
        assert not present, f"{row}: says '{absent_word}' but build_parser() has it"
    else:
        assert present, f"{row}: not in build_parser() (commands {sorted(commands)}, " \
            f"options {options})"


def test_every_cli_command_and_option_has_a_row() -> None:
    listed = {row.name for row in _rows("terway-cli")}
    commands, options = _cli()
    missing = sorted(commands - listed) + [s[-1] for s in options if not listed & set(s)]
    assert not missing, f"docs/upstream.md, terway-cli: in build_parser() but not listed: {missing}"


# -- annotations, events, CNI codes -----------------------------------------------------------

@pytest.mark.parametrize("row", _params("Annotations"))
def test_annotation_row(row: Row) -> None:
    _check_status(row)
    if row.status in ("same", "ours better"):
        assert row.name in _source("daemon/*.py"), f"{row}: no terway/daemon/*.py mentions it"
    if row.ours.startswith("Not read"):
        assert row.name not in _source("**/*.py"), f"{row}: says 'Not read' but terway/ has it"


@pytest.mark.parametrize("row", _params("Events"))
def test_event_row(row: Row) -> None:
    _check_status(row)
    quoted = f'"{row.name}"'
    if row.status in ("same", "ours better"):
        assert quoted in _source("**/*.py"), f"{row}: no terway/ source sends reason {quoted}"
    if row.ours.startswith("Never sent"):
        assert quoted not in _source("**/*.py"), f"{row}: says 'Never sent' but terway/ has it"


def _code_names(code: int) -> list[str]:
    return [n for n, v in vars(cni_config).items()
            if n.isupper() and type(v) is int and v == code]


@pytest.mark.parametrize("row", _params("CNI error codes"))
def test_cni_code_row(row: Row) -> None:
    _check_status(row)
    code = int(row.name)
    names = _code_names(code)
    if row.status in ("same", "ours better"):
        assert names, f"{row}: terway/cni/config.py has no constant for code {code}"
    if row.ours.startswith("Never returned"):
        source = _source("cni/*.py")
        used = [n for n in names if len(re.findall(rf"\b{n}\b", source))
                > len(re.findall(rf"^{n} = ", source, re.M))]
        assert not used, f"{row}: says 'Never returned' but terway/cni uses {used}"


def test_every_cni_code_we_return_has_a_row() -> None:
    listed = {int(row.name) for row in _rows("CNI error codes")}
    source = _source("cni/*.py")
    ours = {v for n, v in vars(cni_config).items() if n.isupper() and type(v) is int
            and 0 < v < 1000 and re.search(rf"\bc\.{n}\b|\(\s*{n}\b", source)}
    missing = sorted(ours - listed)
    assert not missing, f"docs/upstream.md, CNI error codes: codes terway/cni returns, unlisted: " \
        f"{missing}"
