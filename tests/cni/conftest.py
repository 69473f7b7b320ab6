"""The native plugin front, built once per test session (its Python fallback beside it)."""

from __future__ import annotations

import os

import pytest

from terway.cni.launcher import write_plugin


@pytest.fixture(scope="session")
def native_plugin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``<dir>/terway`` (the native front) with ``<dir>/terway-python`` as its fallback."""
    path = str(tmp_path_factory.mktemp("cni-bin") / "terway")
    if not write_plugin(path):
        why = "no C compiler (cc): the native plugin front cannot be built"
        if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
            pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but {why}")
        pytest.skip(why)
    return path
