"""Suite-wide policy: privileged tests run as root, skip elsewhere, and never skip in CI.

CI sets ``TERWAY_REQUIRE_PRIVILEGED=1``: then a privileged test that cannot run fails instead of
skipping, so a green CI always means the netns tests really ran.
"""

from __future__ import annotations

import os
import shutil

import pytest


def privileged_unavailable_reason() -> str | None:
    """Why privileged tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("privileged") is None:
        return
    why = privileged_unavailable_reason()
    if why is None:
        return
    if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
        pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but this test cannot run: {why}")
    pytest.skip(why)


_PROJECT_LOGGERS = ("terway", "terwayd", "emulator")


@pytest.fixture(autouse=True)
def _restore_project_loggers() -> object:
    """Daemon and CLI tests install logfmt handlers (propagate=False) on the project's loggers;
    put them back after each test so later tests' ``caplog`` still sees their records."""
    import logging

    saved = []
    for name in _PROJECT_LOGGERS:
        lg = logging.getLogger(name)
        saved.append((lg, lg.level, lg.propagate, list(lg.handlers)))
    yield None
    for lg, level, propagate, handlers in saved:
        lg.setLevel(level)
        lg.propagate = propagate
        lg.handlers[:] = handlers
