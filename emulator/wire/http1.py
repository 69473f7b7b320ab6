"""A small HTTP/1.1 request reader for the emulator's server: request line, headers, body.

Why not ``BaseHTTPRequestHandler.parse_request``: it parses headers through ``email.parser``,
which costs more CPU per request than the whole signature check. This reader does only what the
emulator needs and refuses everything else with a clear status:

- request line ``METHOD target HTTP/1.x`` (``HTTP/2+`` → 505, anything else malformed, HTTP/0.9
  included → 400; one empty line before it is skipped, as RFC 9112 §2.2 recommends; a target
  starting ``//`` is reduced to one ``/`` like ``http.server`` does);
- header lines ``name: value`` (names are tokens without whitespace; obsolete line folding,
  a missing colon → 400; more than 100 headers or a line over 64 KiB → 431, an over-long request
  line → 414). Values keep the stdlib's shape: leading blanks and the line end removed, decoded
  as ISO-8859-1;
- bodies by ``Content-Length`` only: ``Transfer-Encoding`` (chunked) → 411, a bad, conflicting
  or > 16 MiB length → 400;
- keep-alive as in ``http.server``: HTTP/1.1 keeps the connection unless ``Connection: close``,
  HTTP/1.0 closes unless ``Connection: keep-alive``; ``Expect: 100-continue`` on HTTP/1.1 gets an
  interim ``100 Continue`` before the body is read.

Every refusal closes the connection (its framing can no longer be trusted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BufferedIOBase

MAX_LINE = 65536
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
_END_OF_HEADERS = (b"\r\n", b"\n", b"")
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110 §5.6.2 token
_TOKEN = re.compile(_TCHARS)


class HttpError(Exception):
    """A request the server refuses before the gateway sees it; always closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class RequestHead:
    """The request line and headers; ``headers`` maps lowercase names to every value sent."""

    method: str
    target: str
    version: str
    headers: dict[str, list[str]]

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the reply (``http.server``'s rule)."""
        connection = (self.header("connection") or "").lower()
        if connection == "close":
            return False
        return self.version == "HTTP/1.1" or connection == "keep-alive"

    @property
    def expects_continue(self) -> bool:
        expect = self.header("expect")
        return self.version == "HTTP/1.1" and expect is not None and (
            expect.lower() == "100-continue")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """``b"POST /?a=b HTTP/1.1\\r\\n"`` → ``("POST", "/?a=b", "HTTP/1.1")``; HttpError if bad."""
    words = line.decode("iso-8859-1").rstrip("\r\n").split()
    if len(words) != 3:
        raise HttpError(400, f"Bad request line {_shown(line)}")
    method, target, version = words
    if not _is_token(method):
        raise HttpError(400, f"Bad request method {_shown(method.encode('iso-8859-1'))}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        major = _major_version(version)
        if major is None:
            raise HttpError(400, f"Bad request version {_shown(version.encode('iso-8859-1'))}")
        if major >= 2:
            raise HttpError(505, f"HTTP version not supported: {version}")
        # HTTP/1.2…1.9: answer as 1.1 (RFC 9110 §2.5: a higher minor is understood as ours)
        version = "HTTP/1.1"
    if target.startswith("//"):  # as http.server (gh-87389): "//x" would read as a host name
        target = "/" + target.lstrip("/")
    return method, target, version


def parse_header_line(line: bytes) -> tuple[str, str]:
    """``b"X-Acs-Action: Foo\\r\\n"`` → ``("x-acs-action", "Foo")``; HttpError if malformed."""
    text = line.decode("iso-8859-1")
    if text[:1] in (" ", "\t"):
        raise HttpError(400, "Obsolete header line folding is not supported")
    name, colon, value = text.partition(":")
    if not colon or not _is_token(name):
        raise HttpError(400, f"Bad header line {_shown(line)}")
    return name.lower(), value.lstrip(" \t").rstrip("\r\n")


def read_head(rfile: BufferedIOBase) -> RequestHead | None:
    """Read one request's line and headers; None at a clean end of stream (client closed)."""
    line = rfile.readline(MAX_LINE + 1)
    if line in (b"\r\n", b"\n"):  # tolerate one stray CRLF after a previous body
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise HttpError(414, "Request line too long")
    method, target, version = parse_request_line(line)
    return RequestHead(method, target, version, parse_header_block(_header_lines(rfile)))


def _header_lines(rfile: BufferedIOBase) -> list[bytes]:
    """The raw header lines up to the empty line that ends them (limits enforced)."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HttpError(431, "Header line too long")
        if line in _END_OF_HEADERS:
            if not line:
                raise HttpError(400, "Connection closed inside the request headers")
            return lines
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise HttpError(431, "Too many headers")


def parse_header_block(lines: list[bytes]) -> dict[str, list[str]]:
    """Header lines → lowercase name → values; the same result as ``parse_header_line`` per line
    (which names the bad line on failure), with string methods only on the common path."""
    headers: dict[str, list[str]] = {}
    for line in b"".join(lines).decode("iso-8859-1").split("\n")[:-1]:
        name, colon, value = line.partition(":")
        if not (colon and _is_plain_name(name)) or "\r" in value[:-1]:
            for raw in lines:
                parse_header_line(raw)  # raises for the first bad line
            raise HttpError(400, "Bad header line")  # a bare CR inside a value
        key = name.lower()
        value = value.lstrip(" \t").rstrip("\r")
        values = headers.get(key)
        if values is None:
            headers[key] = [value]
        else:
            values.append(value)
    return headers


def _is_plain_name(name: str) -> bool:
    """A header name made of letters, digits and ``-`` (every real one), else the full rule."""
    return (name.replace("-", "").isalnum() and name.isascii()) or _is_token(name)


def body_length(head: RequestHead) -> int:
    """The request body's size from ``Content-Length`` (0 without one); HttpError if unusable."""
    if "transfer-encoding" in head.headers:
        raise HttpError(411, "Transfer-Encoding is not supported; send a Content-Length body")
    values = head.headers.get("content-length")
    if not values:
        return 0
    if len(set(values)) != 1:
        raise HttpError(400, "Conflicting Content-Length headers")
    text = values[0].strip()
    if not text:  # an empty value reads as no body, as the server always accepted
        return 0
    if not text.isdigit() or not text.isascii():
        raise HttpError(400, "bad or too large Content-Length")
    length = int(text)
    if length > MAX_BODY:
        raise HttpError(400, "bad or too large Content-Length")
    return length


def read_body(rfile: BufferedIOBase, length: int) -> bytes:
    """Exactly ``length`` bytes; HttpError if the client closes the connection first."""
    if not length:
        return b""
    body = rfile.read(length)
    if len(body) != length:
        raise HttpError(400, "Connection closed inside the request body")
    return body


def _is_token(text: str) -> bool:
    """An RFC 9110 token: visible ASCII without separators (method and header names)."""
    return _TOKEN.fullmatch(text) is not None


def _major_version(version: str) -> int | None:
    """``HTTP/2.0`` → 2; None when ``version`` is not ``HTTP/<digit>.<digit>``."""
    if not version.startswith("HTTP/"):
        return None
    major, dot, minor = version[5:].partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and major.isascii() and minor.isascii()):
        return None
    return int(major)


def _shown(raw: bytes) -> str:
    """A refused line for an error message: trimmed and escaped (never echoes control bytes)."""
    return repr(raw[:80].rstrip(b"\r\n"))[1:]
