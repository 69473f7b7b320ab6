"""Removing what an earlier Felix left on the node, when policy is switched off.

Felix's rules outlive it (a restart must not open anything), so turning
``disable_network_policy`` on would leave the last policies enforced forever. At start in the
disabled mode the ``policy`` container removes Felix's chains (``cali-*`` in every table, and the
jumps into them from the built-in chains) and its ipsets (``cali40*``), as upstream's
``uninstall_policy.sh`` does. Only names Felix owns are touched.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TABLES = ("raw", "mangle", "nat", "filter")
CHAIN_PREFIX = "cali-"
IPSET_PREFIX = "cali"

Run = Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class TablePlan:
    """What to remove from one table: jump rules first, then the chains."""

    table: str
    jumps: tuple[tuple[str, ...], ...]   # rule specs as ``-D`` takes them
    chains: tuple[str, ...]


def plan_table(table: str, save_output: str) -> TablePlan:
    """Parse ``iptables-save -t table`` output into what must go (pure: unit-tested)."""
    chains: list[str] = []
    jumps: list[tuple[str, ...]] = []
    for line in save_output.splitlines():
        if line.startswith(":") and line[1:].startswith(CHAIN_PREFIX):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            words = shlex.split(line)
            chain = words[1]
            if chain.startswith(CHAIN_PREFIX):
                continue                      # flushed with its chain
            if _jumps_to_felix(words):
                jumps.append(tuple(words[1:]))
    return TablePlan(table, tuple(jumps), tuple(chains))


def _jumps_to_felix(words: list[str]) -> bool:
    for flag in ("-j", "-g", "--jump", "--goto"):
        if flag in words:
            i = words.index(flag)
            if i + 1 < len(words) and words[i + 1].startswith(CHAIN_PREFIX):
                return True
    return False


def _run(argv: Sequence[str]) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


def remove_felix_state(run: Run = _run, iptables: str = "iptables-nft") -> int:
    """Remove Felix's chains and ipsets; returns how many chains and sets were removed."""
    removed = 0
    for table in TABLES:
        plan = plan_table(table, run([f"{iptables}-save", "-t", table]))
        for spec in plan.jumps:
            run([iptables, "-w", "-t", table, "-D", *spec])
        for chain in plan.chains:
            run([iptables, "-w", "-t", table, "-F", chain])
        for chain in plan.chains:
            run([iptables, "-w", "-t", table, "-X", chain])
        removed += len(plan.chains)
    sets = [name for name in run(["ipset", "list", "-n"]).split()
            if name.startswith(IPSET_PREFIX)]
    for name in sets:
        run(["ipset", "destroy", name])
    return removed + len(sets)
