"""The test bed's API relay when its namespace is gone: each connection is closed and the cause
is logged once, not as a traceback per connection (no root needed: it fails before setns)."""

from __future__ import annotations

import logging
import socket

import pytest

from emulator.cluster.relay import Relay


def test_a_missing_namespace_closes_connections_and_is_logged_once(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    relay = Relay("i-relay-test-no-such-netns", ("127.0.0.1", 9))
    try:
        with caplog.at_level(logging.ERROR, logger="emulator.cluster"):
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as conn:
                    assert conn.recv(1) == b""              # closed, nothing relayed
    finally:
        relay.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert "relay into netns i-relay-test-no-such-netns cannot connect" in errors[0]
    assert "Traceback" not in capsys.readouterr().err
