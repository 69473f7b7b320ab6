"""The emulator's HTTP/1.1 request reader: parsing units, then raw bytes against a live server."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest

from emulator.server import Emulator
from emulator.wire.http1 import (
    MAX_BODY,
    MAX_HEADERS,
    MAX_LINE,
    HttpError,
    RequestHead,
    body_length,
    parse_header_line,
    parse_request_line,
    read_body,
    read_head,
)


def _head(raw: bytes) -> RequestHead | None:
    return read_head(io.BytesIO(raw))


def _status(call: object) -> int:
    with pytest.raises(HttpError) as info:
        assert callable(call)
        call()
    return info.value.status


# -- units ---------------------------------------------------------------------------------------
def test_request_line_and_headers() -> None:
    head = _head(b"POST /?A=1 HTTP/1.1\r\nHost: x\r\nX-Acs-Action:  Foo \r\nx-acs-action: Bar\r\n"
                 b"Content-Length: 3\r\n\r\nabc")
    assert head is not None
    assert (head.method, head.target, head.version) == ("POST", "/?A=1", "HTTP/1.1")
    # names lowercased, values as http.server gave them: leading blanks and line end removed
    assert head.headers == {"host": ["x"], "x-acs-action": ["Foo ", "Bar"],
                            "content-length": ["3"]}
    assert head.keep_alive and not head.expects_continue and body_length(head) == 3


def test_bare_lf_line_ends_and_one_leading_blank_line_are_accepted() -> None:
    head = _head(b"\r\nGET /health HTTP/1.1\nHost: x\n\n")
    assert head is not None and head.target == "/health" and head.headers == {"host": ["x"]}


def test_end_of_stream_is_none_and_truncated_headers_are_400() -> None:
    assert _head(b"") is None
    assert _status(lambda: _head(b"GET / HTTP/1.1\r\nHost: x\r\n")) == 400


@pytest.mark.parametrize("line, status", [
    (b"GET /\r\n", 400),                       # HTTP/0.9
    (b"GET / HTTP/1.1 extra\r\n", 400),
    (b"\r\n", 400),
    (b"G(T / HTTP/1.1\r\n", 400),
    (b"GET / HTTP/x.y\r\n", 400),
    (b"GET / FTP/1.1\r\n", 400),
    (b"GET / HTTP/1\r\n", 400),
    (b"GET / HTTP/2.0\r\n", 505),
    (b"\xff\xfe / HTTP/1.1\r\n", 400),
])
def test_malformed_request_lines(line: bytes, status: int) -> None:
    assert _status(lambda: parse_request_line(line)) == status


def test_request_line_versions_and_double_slash() -> None:
    assert parse_request_line(b"GET //a//b HTTP/1.0\r\n") == ("GET", "/a//b", "HTTP/1.0")
    assert parse_request_line(b"GET / HTTP/1.2\r\n")[2] == "HTTP/1.1"


@pytest.mark.parametrize("line", [b" folded\r\n", b"\tfolded\r\n", b"no colon\r\n",
                                  b"Bad Name: v\r\n", b": v\r\n", b"a@b: v\r\n"])
def test_malformed_header_lines_are_400(line: bytes) -> None:
    assert _status(lambda: parse_header_line(line)) == 400


def test_limits() -> None:
    assert _status(lambda: _head(b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n\r\n")) == 414
    long_header = b"GET / HTTP/1.1\r\nx: " + b"a" * MAX_LINE + b"\r\n\r\n"
    assert _status(lambda: _head(long_header)) == 431
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    assert _status(lambda: _head(many + b"\r\n")) == 431
    just_enough = b"GET / HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(MAX_HEADERS))
    assert _head(just_enough + b"\r\n") is not None


@pytest.mark.parametrize("headers, status", [
    ({"transfer-encoding": ["chunked"]}, 411),
    ({"content-length": ["lots"]}, 400),
    ({"content-length": ["-1"]}, 400),
    ({"content-length": ["+1"]}, 400),
    ({"content-length": ["1", "2"]}, 400),
    ({"content-length": [str(MAX_BODY + 1)]}, 400),
])
def test_bad_bodies(headers: dict[str, list[str]], status: int) -> None:
    head = RequestHead("POST", "/", "HTTP/1.1", headers)
    assert _status(lambda: body_length(head)) == status


def test_body_lengths_and_truncated_body() -> None:
    def length(values: list[str]) -> int:
        return body_length(RequestHead("POST", "/", "HTTP/1.1", {"content-length": values}))

    assert length(["7", "7"]) == 7 and length([" 5 "]) == 5 and length([""]) == 0
    assert length([str(MAX_BODY)]) == MAX_BODY
    assert read_body(io.BytesIO(b"abcdef"), 3) == b"abc"
    assert _status(lambda: read_body(io.BytesIO(b"ab"), 3)) == 400


@pytest.mark.parametrize("version, connection, keep", [
    ("HTTP/1.1", None, True), ("HTTP/1.1", "close", False), ("HTTP/1.1", "Close", False),
    ("HTTP/1.0", None, False), ("HTTP/1.0", "keep-alive", True), ("HTTP/1.0", "Keep-Alive", True),
])
def test_keep_alive_rule(version: str, connection: str | None, keep: bool) -> None:
    headers = {"connection": [connection]} if connection else {}
    assert RequestHead("GET", "/", version, headers).keep_alive is keep


def test_expect_continue_only_on_http11() -> None:
    expect = {"expect": ["100-Continue"]}
    assert RequestHead("POST", "/", "HTTP/1.1", expect).expects_continue
    assert not RequestHead("POST", "/", "HTTP/1.0", expect).expects_continue
    assert not RequestHead("POST", "/", "HTTP/1.1", {"expect": ["x"]}).expects_continue


# -- raw bytes against a running server ------------------------------------------------------------
@pytest.fixture
def conn() -> Iterator[socket.socket]:
    emu = Emulator.create(seed=1)
    with emu.serve() as handle:
        sock = socket.create_connection((handle.host, handle.port), timeout=5)
        try:
            yield sock
        finally:
            sock.close()


def _response(sock: socket.socket, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response read off the socket: status, headers (lowercase names), body (not for
    HEAD). Requests are sent one at a time, so the reader's buffer never holds the next one."""
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.lower()] = value.strip()
    body = b"" if head else reader.read(int(headers.get("content-length", "0")))
    return status, headers, body


def _closed(sock: socket.socket) -> bool:
    return sock.recv(1) == b""


def test_live_keep_alive_get_and_head(conn: socket.socket) -> None:
    conn.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = _response(conn)
    assert status == 200 and "connection" not in headers and body
    assert headers["server"] == "terway-emulator"
    conn.sendall(b"GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n")
    get_status, _, get_body = _response(conn)
    conn.sendall(b"HEAD /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = _response(conn, head=True)  # the GET's length, no body bytes follow
    assert status == get_status and int(headers["content-length"]) == len(get_body)
    conn.sendall(b"GET /_emulator/health HTTP/1.0\r\n\r\n")
    status, headers, _ = _response(conn)
    assert status == 200 and headers["connection"] == "close" and _closed(conn)


def test_live_expect_100_continue(conn: socket.socket) -> None:
    conn.sendall(b"POST /?RegionId=cn-hangzhou HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    assert conn.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.sendall(b"{}")
    status, _, body = _response(conn)
    assert status == 400 and json.loads(body)["Code"] == "IncompleteSignature"


@pytest.mark.parametrize("raw, status", [
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"garbage\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
    (b"PATCH / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 400),
])
def test_live_refusals_answer_and_close(conn: socket.socket, raw: bytes, status: int) -> None:
    conn.sendall(raw)
    if raw.endswith(b"ab"):
        conn.shutdown(socket.SHUT_WR)  # the body never completes
    got, headers, body = _response(conn)
    assert got == status and headers["connection"] == "close"
    assert json.loads(body)["error"]
    assert _closed(conn)
