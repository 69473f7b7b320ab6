"""Open a local HTML page in a real headless Chromium and read back its DOM and console.

``render(page)`` runs ``chromium --headless --dump-dom`` with console logging on stderr and no
network (every host resolves to nothing, so a page that reaches out fails loudly), and returns
the DOM after scripts ran plus every console message the page produced. A probe script can be
appended to a copy of the page to drive it (dispatch events) and write what it saw into the DOM.

Without Chromium the calling test is skipped, except when ``TERWAY_REQUIRE_PRIVILEGED=1`` (CI),
where it fails: scripts/setup.sh installs ``chromium`` on Debian 12.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]? ?(.*)$")
TIMEOUT_S = 120


@dataclass
class Rendered:
    dom: str
    console: list[str]        # every console message (log, warning, error, uncaught exception)


def chromium_or_skip() -> str:
    """The Chromium executable; skips the test without it (fails when CI requires it)."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    why = "needs a headless browser (`chromium` on PATH; scripts/setup.sh installs it)"
    if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
        pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but {why}")
    pytest.skip(why)


def render(page: Path, probe: str = "") -> Rendered:
    """Load ``page`` (with ``probe`` JavaScript run after its own scripts) and dump the DOM."""
    browser = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="terway-browser-") as tmp:
        target = page
        if probe:
            target = Path(tmp) / page.name
            text = page.read_text(encoding="utf-8")
            target.write_text(text.replace("</body>", f"<script>{probe}</script></body>"),
                              encoding="utf-8")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp}/profile", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--window-size=1200,900", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=5000", "--dump-dom", target.resolve().as_uri()]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    if result.returncode != 0 or not result.stdout.strip():
        raise AssertionError(f"{browser} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    console = [m.group(1) for line in result.stderr.splitlines()
               if (m := _CONSOLE.search(line))]
    return Rendered(result.stdout, console)
