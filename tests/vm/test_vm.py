"""Boot a qemu guest with Debian's kernel and run the IPVLAN datapath tests inside it.

This host's kernel has no ipvlan module, so the IPVLAN tests skip here; this test is what makes
them count. It skips only when qemu / the kernel image / busybox-static are not installed, and
then only outside CI (TERWAY_REQUIRE_PRIVILEGED=1 turns the skip into a failure).
scripts/vm/install.sh installs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.vm import guest
from tests.vm.report import record

# Tests that must run (not skip) in the guest: the datapath helper's and this directory's.
GUEST_TESTS = ("tests/datapath/test_ipvlan.py", "tests/datapath/test_eni_setup.py",
               "tests/vm/test_ipvlan_guest.py")
pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def require_tools() -> None:
    missing = guest.missing_tools()
    if not missing:
        return
    why = "qemu guest unavailable, missing " + ", ".join(missing) + " (run scripts/vm/install.sh)"
    if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
        pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but {why}")
    pytest.skip(why)


def test_ipvlan_datapath_in_qemu_guest(tmp_path: Path) -> None:
    require_tools()
    timeout = float(os.environ.get("TERWAY_VM_TIMEOUT", "600"))
    result = guest.boot(GUEST_TESTS, timeout=timeout, log=tmp_path / "console.log")
    summary = result.pytest_summary()
    record("ipvlan", f"qemu guest (kernel {result.kernel}, {result.accel}, "
                     f"{result.seconds:.0f}s boot-to-poweroff): {summary or 'no summary'}")
    print(f"guest: kernel {result.kernel} ({result.accel}), {result.seconds:.1f}s; {summary}")
    tail = "\n".join(result.console.splitlines()[-80:])
    problems = list(guest.iter_failures(result))
    assert not problems, f"{'; '.join(problems)}\n--- guest console (tail) ---\n{tail}"
    assert "passed" in summary, f"guest ran no tests: {summary!r}\n{tail}"
    # A skip in the guest means an IPVLAN test did not really run: that is a failure here.
    for word in ("skipped", "failed", "error", "deselected"):
        assert word not in summary, f"guest summary has {word}: {summary!r}\n{tail}"
