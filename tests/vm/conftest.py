"""Print which datapath ran where at the end of the run (filled in by tests/vm/test_vm.py)."""

from __future__ import annotations

import pytest

from tests.vm import report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = report.lines()
    if not ran:
        return
    terminalreporter.section("datapaths run in the qemu guest")
    for line in ran:
        terminalreporter.write_line(line)
