"""The FakeDaemon cleans up after itself: no ``terway-fake-*`` directory outlives it."""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path

import pytest

from tests.cni.fakedaemon import FakeDaemon


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tempfile``'s directory for this test only (short: a unix socket path is <= 107 bytes)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_its_socket_directory_goes_on_exit(temp_dir: Path) -> None:
    with FakeDaemon() as d:
        assert os.path.exists(d.socket)
        assert Path(d.dir).parent == temp_dir
    assert list(temp_dir.iterdir()) == []


def test_a_daemon_never_entered_leaves_nothing_either(temp_dir: Path) -> None:
    d = FakeDaemon()
    assert Path(d.dir).is_dir()
    del d
    gc.collect()
    assert list(temp_dir.iterdir()) == []
