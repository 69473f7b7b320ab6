"""A bounded fuzz test of the native front (terway/cni/shim.c), built with ASan and UBSan.

Why: the front is the one piece of C on a node. It runs as root for every pod and reads bytes
nobody checked: whatever stdin the runtime passes, and whatever arrives on the daemon's socket.
So it is built here with ``-fsanitize=address,undefined -fno-sanitize-recover=all`` and fed
generated cases, a fixed number from a fixed seed (a failure names its case and reproduces):

- stdin: random bytes, truncated and duplicated netconfs, huge strings, deep nesting, invalid
  UTF-8, odd ``daemon_socket`` / ``rpc_timeout`` / ``cniVersion`` values, a closed stdin and a
  directory as stdin (the read-error path);
- replies from a fake daemon: valid ones in any key order, whitespace and string escapes, and
  mutations of them (wrong types, exit codes like 1e2, 0.5, -1, 256, 007, bad base64 padding,
  truncated lines, no newline, lines longer than MAX_REPLY, ...).

Every case must end in a normal exit without a sanitizer report, and either print exactly what a
valid reply says (checked against an independent reading of the reply with Python's json), or
run the fallback (a fake ``terway-python`` beside the front that prints a marker and the length
of the stdin it got), or print the front's own CNI error as valid UTF-8 JSON.

ASan fills fresh heap memory with a non-zero byte here (``max_malloc_fill_size``), so a string
routine running over uninitialised memory is caught as an overflow instead of stopping at a
zero. The summary line ``front fuzz: cases=N seed=S failures=F`` is printed past pytest's
capture, so it shows in ``nox -s tests`` output.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from terway.cni import native

SEED = 20260522
STDIN_CASES = 1400
REPLY_CASES = 2200
WORKERS = 2 * (os.cpu_count() or 1) + 2

SANITIZE = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Werror")
SANITIZER_EXIT = 86
SANITIZER_MARKERS = (b"Sanitizer", b"runtime error:", b"SUMMARY: ")
FALLBACK_EXIT = 42
FALLBACK_SCRIPT = '#!/bin/sh\nprintf "FALLBACK %s\\n" "$(wc -c)"\nexit 42\n'
CLOSED, DIRECTORY = "closed", "directory"  # stdin that is not bytes
HANG_GUARD = 60  # seconds: a case still running then is a hang (the front's deadline is 30 s)


def c_constant(name: str) -> int:
    """A ``#define NAME n`` or ``(a << b)`` of shim.c, so the oracle follows the source."""
    m = re.search(rf"#define {name} \(?(\d+)(?: << (\d+))?\)?", native.SOURCE.read_text())
    assert m, f"{name} not found in shim.c"
    return int(m[1]) << int(m[2] or 0)


MAX_REPLY, MAX_DEPTH, MAX_FAST_STDIN = (c_constant(n) for n in
                                        ("MAX_REPLY", "MAX_DEPTH", "MAX_FAST_STDIN"))


# ---- the sanitized front ------------------------------------------------------------------


@dataclass(frozen=True)
class Fronts:
    with_fallback: str  # a fake terway-python beside it
    alone: str          # nothing beside it: its own CNI error shows
    workdir: Path
    env: dict[str, str]


def _unavailable(why: str) -> NoReturn:
    if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
        pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but the sanitized front cannot run: {why}")
    pytest.skip(why)


def _compile(cc: str, source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cc, *SANITIZE, "-o", str(out), str(source)],
                          capture_output=True, text=True, check=False)


def _sanitizer_env(leaks: bool) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "fuzz", "CNI_NETNS": "/var/run/netns/fuzz",
        "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
        "ASAN_OPTIONS": f"exitcode={SANITIZER_EXIT}:max_malloc_fill_size=16777216"
                        f":detect_leaks={int(leaks)}",
        "UBSAN_OPTIONS": f"exitcode={SANITIZER_EXIT}:halt_on_error=1:print_stacktrace=1",
    }


@pytest.fixture(scope="module")
def fronts(tmp_path_factory: pytest.TempPathFactory) -> Fronts:
    """shim.c built with ASan + UBSan, twice: with a fake fallback beside it, and alone."""
    cc = native.compiler()
    if cc is None:
        _unavailable("no C compiler (cc)")
    work = tmp_path_factory.mktemp("front-fuzz")
    probe = work / "probe.c"
    probe.write_text("#include <stdlib.h>\nint main(void) { free(malloc(1)); return 0; }\n")
    proc = _compile(cc, probe, work / "probe")
    if proc.returncode != 0:
        _unavailable(f"{cc} has no ASan/UBSan runtime: {proc.stderr.strip()[:300]}")
    for sub in ("fb", "alone"):
        (work / sub).mkdir()
    proc = _compile(cc, native.SOURCE, work / "fb" / "terway")
    assert proc.returncode == 0, proc.stderr  # the runtime works: this is shim.c's fault
    shutil.copy(work / "fb" / "terway", work / "alone" / "terway")
    script = work / "fb" / "terway-python"
    script.write_text(FALLBACK_SCRIPT)
    script.chmod(0o755)
    for leaks in (True, False):  # LeakSanitizer needs ptrace, which some sandboxes refuse
        ran = subprocess.run([str(work / "probe")], env=_sanitizer_env(leaks),
                             capture_output=True, check=False, timeout=HANG_GUARD)
        if b"LeakSanitizer has encountered a fatal error" not in ran.stderr:
            break
    if ran.returncode != 0:
        _unavailable(f"the sanitizer runtime does not run here: {ran.stderr[:300]!r}")
    return Fronts(str(work / "fb" / "terway"), str(work / "alone" / "terway"), work,
                  _sanitizer_env(leaks))


@dataclass(frozen=True)
class Outcome:
    rc: int
    out: bytes
    err: bytes


def run_front(binary: str, stdin: bytes | str, fronts: Fronts) -> Outcome:
    """Run the front once: stdin bytes, or CLOSED (no fd 0), or DIRECTORY (read fails)."""
    argv, fd = [binary], -1
    kwargs: dict[str, Any] = {"stdin": subprocess.DEVNULL}
    if stdin == CLOSED:
        argv = ["/bin/sh", "-c", 'exec "$0" <&-', binary]
    elif stdin == DIRECTORY:
        fd = kwargs["stdin"] = os.open(fronts.workdir, os.O_RDONLY | os.O_DIRECTORY)
    else:
        assert isinstance(stdin, bytes)
        kwargs = {"input": stdin}
    try:
        proc = subprocess.run(argv, env=fronts.env, capture_output=True, timeout=HANG_GUARD,
                              check=False, **kwargs)
    finally:
        if fd >= 0:
            os.close(fd)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


# ---- judging an outcome ---------------------------------------------------------------------


def abnormal(o: Outcome) -> str | None:
    """Why this is not a normal end of the front (a signal, a sanitizer report), or None."""
    if o.rc < 0:
        return f"killed by signal {-o.rc}"
    if o.rc == SANITIZER_EXIT or any(m in o.err for m in SANITIZER_MARKERS):
        return "sanitizer report"
    return None


def fallback_ran(o: Outcome, stdin: bytes | str) -> bool:
    """The fake Python plugin ran, and got the whole stdin (when there was one to read)."""
    if o.rc != FALLBACK_EXIT or not o.out.startswith(b"FALLBACK "):
        return False
    if stdin == DIRECTORY:
        return True
    size = 0 if stdin == CLOSED else len(stdin)
    return o.out == f"FALLBACK {size}\n".encode()


def own_error(o: Outcome) -> bool:
    """The front's own CNI error: one line of valid UTF-8 JSON with the CNI error keys."""
    if o.rc != 1 or not o.out.endswith(b"\n") or not o.err:
        return False
    try:
        doc = json.loads(o.out.decode("utf-8"))
    except ValueError:
        return False
    return (isinstance(doc, dict) and set(doc) == {"cniVersion", "code", "msg", "details"}
            and doc["code"] in (11, 101)
            and all(isinstance(doc[k], str) for k in ("cniVersion", "msg", "details")))


class Pairs(list[tuple[str, Any]]):
    """A JSON object as read, members in order (repeated keys kept)."""


class Number(str):
    """A JSON number token as written (so 007, 1e2 and huge ones stay what they were)."""


def _no_constant(token: str) -> Any:
    raise ValueError(f"not JSON: {token}")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Pairs):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for _, v in item)
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _strings_are_unicode(value: Any) -> bool:
    """No lone surrogate (Python's json accepts "\\ud800"; it is not Unicode)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not isinstance(item, Number):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, Pairs):
            stack.extend(k for k, _ in item)
            stack.extend(v for _, v in item)
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _members(obj: Any, known: tuple[str, ...]) -> dict[str, Any] | None:
    """The known members of an object, None when it is not one or repeats a known key."""
    if not isinstance(obj, Pairs):
        return None
    found: dict[str, Any] = {}
    for key, value in obj:
        if key in known:
            if key in found:
                return None
            found[key] = value
    return found


def _canonical_b64(value: Any) -> bytes | None:
    if not isinstance(value, str) or isinstance(value, Number) or not value.isascii():
        return None
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", value) or len(value) % 4:
        return None
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error:
        return None
    return data if base64.b64encode(data).decode() == value else None


def expected_reply(data: bytes) -> tuple[int, bytes, bytes] | None:
    """What a reply means, read independently of shim.c: (exit, stdout, stderr) when it is one
    line holding ``{"v":1,"ok":true,"result":{"exit":N,"stdout":B64,"stderr":B64}}`` (any
    order, extra keys, no repeated known key, exit a plain integer 0..255, canonical base64,
    nesting at most MAX_DEPTH), else None (the front must take the fallback)."""
    line, newline, _ = data.partition(b"\n")
    if not newline or len(line) > MAX_REPLY:
        return None
    try:
        doc = json.loads(line.decode("utf-8"), object_pairs_hook=Pairs, parse_int=Number,
                         parse_float=lambda t: Number("float:" + t),
                         parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if _depth(doc) > MAX_DEPTH or not _strings_are_unicode(doc):
        return None
    top = _members(doc, ("v", "ok", "result"))
    if top is None or not isinstance(top.get("v"), Number) or top["v"] != "1":
        return None
    if top.get("ok") is not True:
        return None
    result = _members(top.get("result"), ("exit", "stdout", "stderr"))
    if result is None or set(result) != {"exit", "stdout", "stderr"}:
        return None
    code = result["exit"]
    if not (isinstance(code, Number) and re.fullmatch(r"0|[1-9][0-9]{0,2}", code)
            and int(code) <= 255):
        return None
    out, err = _canonical_b64(result["stdout"]), _canonical_b64(result["stderr"])
    if out is None or err is None:
        return None
    return int(code), out, err


# ---- a fake daemon --------------------------------------------------------------------------


class FuzzDaemon:
    """A unix socket that reads each ExecCNI request line and answers ``answer(stdin)``; it
    records what the front sent and any request that was not a well-formed ExecCNI."""

    def __init__(self, path: str, answer: Callable[[bytes], bytes]) -> None:
        self.path, self.answer = path, answer
        self.received: set[str] = set()  # sha256 of each stdin the front forwarded
        self.bad: list[str] = []
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def __enter__(self) -> FuzzDaemon:
        self._srv.bind(self.path)
        self._srv.listen(256)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(HANG_GUARD)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = conn.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
                stdin = self._check(data)
                if stdin is not None:
                    conn.sendall(self.answer(stdin))
            except OSError:
                pass  # the front stopped reading (e.g. a reply past MAX_REPLY)

    def _check(self, line: bytes) -> bytes | None:
        try:
            req = json.loads(line)
            assert req["v"] == 1 and req["method"] == "ExecCNI", req
            env = base64.b64decode(req["params"]["env"], validate=True)
            stdin = base64.b64decode(req["params"]["stdin"], validate=True)
            entries = env.split(b"\0")
            assert entries[-1] == b"" and b"CNI_COMMAND=ADD" in entries, env
            assert all(e.startswith(b"CNI_") for e in entries[:-1]), env
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            self.bad.append(f"{exc!r}: {line[:200]!r}")
            return None
        self.received.add(hashlib.sha256(stdin).hexdigest())
        return stdin


# ---- generating cases -----------------------------------------------------------------------


class Token(str):
    """Emitted verbatim (numbers, literals, deliberately broken values)."""


class Obj(list[tuple[str, Any]]):
    """A JSON object to emit, members in this order (repeats allowed)."""


class Emitter:
    """JSON text with random (valid) whitespace and string escapes; never a raw newline."""

    SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t"}

    def __init__(self, rng: random.Random, plain: bool = False) -> None:
        self.rng = rng
        self.plain = plain  # compact, only the escapes JSON needs: as the daemon writes it

    def ws(self) -> str:
        if self.plain:
            return ""
        return self.rng.choice(("", "", "", "", " ", "  ", "\t", " \r ", "\r\t"))

    def _u(self, ch: str) -> str:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            return self._u(chr(0xD800 + (code >> 10))) + self._u(chr(0xDC00 + (code & 0x3FF)))
        text = f"\\u{code:04x}"
        return text.upper().replace("\\U", "\\u") if self.rng.random() < 0.5 else text

    def string(self, text: str) -> str:
        parts = ['"']
        for ch in text:
            roll = 1.0 if self.plain else self.rng.random()
            if ch in self.SHORT:
                parts.append(self.SHORT[ch] if roll < 0.7 else self._u(ch))
            elif ch < " ":
                parts.append(self._u(ch))
            elif ch == "/" and roll < 0.4:
                parts.append("\\/")
            elif roll < 0.06:
                parts.append(self._u(ch))
            else:
                parts.append(ch)
        parts.append('"')
        return "".join(parts)

    def value(self, v: Any) -> str:
        ws = self.ws
        if isinstance(v, Token):
            return str(v)
        if v is True or v is False or v is None:
            return {True: "true", False: "false", None: "null"}[v]
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, Obj):
            body = ",".join(f"{ws()}{self.string(k)}{ws()}:{ws()}{self.value(x)}{ws()}"
                            for k, x in v)
            return "{" + (body or ws()) + "}"
        assert isinstance(v, list)
        return "[" + (",".join(f"{ws()}{self.value(x)}{ws()}" for x in v) or ws()) + "]"


NUMBERS = ("0", "-0", "7", "-12.5E-3", "1e99999", "123456789012345678901234567890",
           "3.14159", "-1", "1E+2", "0.0")
TEXTS = ("", "x", '"stderr":"', '"exit":9', "é", "中文", "😀", "a/b", "\x00", "\n\t", "\\",
         "\x7f", "terway")
DECOY_KEYS = ("exit", "stdout", "stderr", "v", "ok", "result", "error")
EXTRA_KEYS = ("k", "note", "", "error", "Exit", "stdout ", "\u00e9")


def junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value for keys the front must skip (decoys of known keys included)."""
    roll = rng.random()
    if roll < 0.25 or depth > 3:
        return Token(rng.choice(NUMBERS))
    if roll < 0.5:
        return "".join(rng.choice(TEXTS) for _ in range(rng.randint(0, 4)))
    if roll < 0.6:
        return rng.choice((True, False, None))
    if roll < 0.75:
        return [junk(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return Obj((rng.choice((*DECOY_KEYS, "k", "")), junk(rng, depth + 1))
               for _ in range(rng.randint(0, 3)))


def payload(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return b""
    if roll < 0.45:
        return ('{"cniVersion":"1.0.0","msg":"x","stderr":"QUFB"} "stderr":"'
                + rng.choice(TEXTS)).encode() + b"\n"
    if roll < 0.9:
        return rng.randbytes(rng.randint(1, 300))
    return rng.randbytes(rng.randint(1000, 60000))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bad_b64(rng: random.Random, data: bytes) -> Token | str:
    s = b64(data)
    i = rng.randint(0, len(s))
    options: list[Token | str] = [
        s.rstrip("=") if "=" in s else s + "=", s + "====", s[:-1], "=" + s,
        s[:i] + rng.choice("* -_.\x7f") + s[i:], s[:i] + "\n" + s[i:], s[:2] + "=" + s[2:],
        s[:i] + "é" + s[i:], Token(rng.choice(("1", "null", "[]", "{}", "true"))),
        Token(json.dumps(s)[:-1] + "\\u00e9\""), Token('"' + s + "\\x\""),
    ]
    if s.endswith("="):  # the same length, unused bits set: not canonical
        last = s.rstrip("=")
        options.append(last[:-1] + chr(ord(last[-1]) + 1 if last[-1] != "z" else ord("0"))
                       + s[len(last):])
    return rng.choice(options)


EXIT_TOKENS = ("1e2", "0.5", "-1", "256", "007", "-0", "1.0", "1E0", "99999999999999999999",
               "0x10", "+1", "", "true", "null", '"3"', "[0]", "2.", ".5", "1e", "00", "255 5")
V_TOKENS = ("2", "0", "1.0", '"1"', "true", "01", "-1", "1e0", "null")
OK_TOKENS = ("false", "1", '"true"', "null", "True", "tru", "[true]")
RESULT_TOKENS = ("[]", "null", '"x"', "1", "{}", "true")


def valid_reply(rng: random.Random, plain: bool) -> tuple[Obj, Obj]:
    """(top object, its result object): a valid reply; unless ``plain``, with extra keys in a
    random order."""
    result = Obj([("exit", Token(str(rng.choice((0, 1, 255, rng.randint(0, 255)))))),
                  ("stdout", b64(payload(rng))), ("stderr", b64(payload(rng)))])
    top = Obj([("v", Token("1")), ("ok", True), ("result", result)])
    if plain:
        return top, result
    for obj, extra in ((top, EXTRA_KEYS), (result, (*EXTRA_KEYS, "v", "ok", "result"))):
        obj.extend((rng.choice(extra), junk(rng)) for _ in range(rng.choice((0, 0, 1, 2))))
        if rng.random() < 0.2:  # an unknown object holding known names, before the real ones
            obj.insert(0, ("note", Obj([("stderr", b64(b"decoy")), ("exit", Token("9")),
                                        ("stdout", b64(b"decoy"))])))
        rng.shuffle(obj)
    return top, result


def _replace(obj: Obj, key: str, value: Any) -> None:
    obj[:] = [(k, value if k == key else v) for k, v in obj]


# (in the result object?, key, the tokens it may get): the first mutations of mutate_structure
TOKEN_SWAPS = ((True, "exit", EXIT_TOKENS), (False, "v", V_TOKENS), (False, "ok", OK_TOKENS),
               (False, "result", RESULT_TOKENS))


def mutate_structure(rng: random.Random, top: Obj, result: Obj) -> str:
    """Break (or merely bend) the reply's structure; returns what was done."""
    what = rng.randrange(8)
    if what < len(TOKEN_SWAPS):  # one value replaced by an odd token
        in_result, key, tokens = TOKEN_SWAPS[what]
        token = rng.choice(tokens)
        _replace(result if in_result else top, key, Token(token))
        return f"{key} {token}"
    if what == 4:
        obj = rng.choice((top, result))
        del obj[rng.randrange(len(obj))]
        return "a key dropped"
    if what == 5:
        obj = rng.choice((top, result))
        key, value = rng.choice(obj)
        obj.insert(rng.randint(0, len(obj)), (key, value if rng.random() < 0.5 else junk(rng)))
        return f"{key} repeated"
    if what == 6:
        key = rng.choice(("stdout", "stderr"))
        _replace(result, key, bad_b64(rng, payload(rng)))
        return f"{key} bad base64"
    depth = rng.choice((MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1,
                        5000))
    rng.choice((top, result)).append(("deep", Token("[" * depth + "]" * depth)))
    return f"nesting {depth}"


INVALID_UTF8 = (b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
                b"\x80")


def mutate_line(rng: random.Random, line: bytes) -> tuple[bytes, str]:
    """Damage the reply as bytes (``line`` ends in its newline)."""
    body, i = line[:-1], rng.randint(0, len(line) - 1)
    what = rng.randrange(9)
    if what == 0:
        return body[:i] + rng.choice((b"\n", b"")), "truncated"
    if what == 1:
        return body, "no newline, then close"
    if what == 2:
        return body[:i] + b"\n" + body[i:] + b"\n", "newline inside"
    if what == 3:
        flipped = bytes([body[i % len(body)] ^ (1 << rng.randrange(8))])
        j = i % len(body)
        return body[:j] + flipped + body[j + 1:] + b"\n", "a bit flipped"
    if what == 4:
        return body[:i] + rng.choice(INVALID_UTF8) + body[i:] + b"\n", "invalid UTF-8"
    if what == 5:
        return body[:i] + bytes([rng.randrange(32)]) + body[i:] + b"\n", "control byte"
    if what == 6:
        tail = rng.choice((b"x", b"{}", b",", b" \r ", b"\x00", b"]"))
        return body + tail + b"\n", "text after the object"
    if what == 7:
        return b"\xef\xbb\xbf" + line, "BOM"
    return line + rng.randbytes(rng.randint(1, 50)), "bytes after the newline"


ODD_LINES = (
    b"", b"\n", b"{}\n", b"[]\n", b"null\n", b"1\n", b'"x"\n', b"{\n",
    b'{"v":1,"ok":false,"error":{"code":"UnknownMethod","message":"ExecCNI"}}\n',
    b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"","stderr":"","x":"\\ud800"}}\n',
    b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"","stderr":"","x":NaN}}\n',
    b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"","stderr":"","x":-Infinity}}\n',
    b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"","stderr":"","x":"\\u12"}}\n',
    b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"","stderr":""}}\n',
    b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"\\u0041\\u0041\\u003d\\u003d","stderr":""}}\n',
    b"{" * 100000 + b"\n",
)


def long_lines() -> list[bytes]:
    """Replies around MAX_REPLY: exactly at it (valid), one byte over, far over."""
    head = b'{"v":1,"ok":true,"result":{"exit":3,"stdout":"QUJD","stderr":""},"pad":"'
    pad = MAX_REPLY - len(head) - 2
    at_limit = head + b"x" * pad + b'"}\n'
    assert len(at_limit) == MAX_REPLY + 1
    return [at_limit, head + b"x" * (pad + 1) + b'"}\n', head + b"x" * (MAX_REPLY * 2) + b'"}\n',
            b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"' + b64(b"y" * (MAX_REPLY // 2)
            ).encode() + b'","stderr":""}}\n']


def reply_cases(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    cases: list[tuple[str, bytes]] = [("odd line", line) for line in ODD_LINES]
    cases += [("long line", line) for line in long_lines()]
    while len(cases) < count:
        plain = rng.random() < 0.3
        top, result = valid_reply(rng, plain)
        roll = rng.random()
        how = "plain" if plain else "valid"
        if roll < 0.45:
            how += ", " + mutate_structure(rng, top, result)
        line = Emitter(rng, plain).value(top).encode() + b"\n"
        if 0.45 <= roll < 0.75:
            line, damage = mutate_line(rng, line)
            how += ", " + damage
        cases.append((how, line))
    return cases


def stdin_cases(rng: random.Random, count: int, sock: str, fronts: Fronts) -> list[
        tuple[str, bytes | str]]:
    """Mutated netconfs; about half point at the fake daemon."""
    not_socket = str(fronts.workdir / "probe.c")
    cases: list[tuple[str, bytes | str]] = [("closed", CLOSED), ("directory", DIRECTORY)]
    sockets: list[Any] = [sock] * 6 + [
        "", 123, None, Obj(), [], "relative.sock", "/nonexistent/x.sock", "A" * 107, "A" * 108,
        "/" + "a" * 300, sock + '"', Token(json.dumps(sock).replace("/", "\\/")), not_socket,
        str(fronts.workdir), Token('"' + sock), Token(""), "\udcff", sock.encode().hex()]
    timeouts: list[Any] = [Token(t) for t in (
        "0", "-1", "1", "3600", "3601", "1e2", "1.5", '"5"', "99999999999999999999999",
        "true", "null", "007", "[]", "{}", "30", "30", "30", "")]
    versions: list[Any] = ["1.0.0", "0.4.0", "", "1.0.\udcff", "\udcff\udcfe", '"', "\\",
                           "x" * 31, "x" * 32, "x" * 200, "\x01\x7f", "é", Token("1"),
                           Token('"1.0\\u0000"')]
    emit = Emitter(rng)
    while len(cases) < count:
        conf = Obj([("cniVersion", rng.choice(versions)), ("name", "fuzz"), ("type", "terway"),
                    ("daemon_socket", rng.choice(sockets)), ("rpc_timeout", rng.choice(timeouts))])
        roll = rng.random()
        how = "netconf"
        if roll < 0.1:
            conf.append(("name", "x" * rng.choice((1000, 70000, 300000, MAX_FAST_STDIN + 10))))
            how = "huge string"
        elif roll < 0.2:
            depth = rng.choice((10, 1000, 100000))
            conf.append(("args", Token("[" * depth + "]" * depth)))
            how = f"nesting {depth}"
        elif roll < 0.3:
            conf.append((rng.choice(("daemon_socket", "rpc_timeout", "cniVersion")),
                         rng.choice(sockets + timeouts)))
            how = "a key repeated"
        elif roll < 0.35:
            conf.append(("args", Obj([("daemon_socket", "/x.sock"), ("rpc_timeout", Token("1"))])))
            how = "nested keys"
        rng.shuffle(conf)
        data = emit.value(conf).encode("utf-8", "surrogateescape")
        roll = rng.random()
        if roll < 0.1:
            data, how = rng.randbytes(rng.randint(0, 3000)), "random bytes"
        elif roll < 0.25:
            data, how = data[:rng.randint(0, len(data))], how + ", truncated"
        elif roll < 0.3:
            data, how = data + data[:rng.randint(0, len(data))], how + ", duplicated"
        elif roll < 0.4:
            i = rng.randint(0, len(data))
            data = data[:i] + rng.choice((*INVALID_UTF8, b"\x00", b'"', b"\\")) + data[i:]
            how += ", a byte inserted"
        elif roll < 0.45:
            for key in (b'"daemon_socket"', b'"rpc_timeout"', b'"cniVersion"'):
                data = data.replace(key, key + rng.choice((b"", b" ", b"\x00", b":", b'"')))
            data, how = data[:rng.randint(0, len(data))], how + ", keys broken"
        cases.append((how, data))
    return cases


# ---- the tests ------------------------------------------------------------------------------


@dataclass
class Failure:
    case: str
    why: str
    data: bytes | str
    outcome: Outcome

    def __str__(self) -> str:
        o = self.outcome
        return (f"{self.case}: {self.why}\n  input[:300]={self.data[:300]!r}\n  rc={o.rc} "
                f"out[:300]={o.out[:300]!r}\n  err[:2000]={o.err[:2000]!r}")


FAST = (7, b"fast-out\n", b"fast-err\n")
FAST_REPLY = (b'{"v":1,"ok":true,"result":{"exit":7,"stdout":"' + b64(FAST[1]).encode()
              + b'","stderr":"' + b64(FAST[2]).encode() + b'"}}\n')


def judge_stdin_case(data: bytes | str, alone: bool, o: Outcome, daemon: FuzzDaemon) -> str | None:
    if why := abnormal(o):
        return why
    if (o.rc, o.out, o.err) == FAST:
        if not isinstance(data, bytes) or len(data) > MAX_FAST_STDIN:
            return "fast path taken for stdin it must not forward"
        if hashlib.sha256(data).hexdigest() not in daemon.received:
            return "fast path answered, but the daemon never got this stdin"
        return None
    if (own_error(o) if alone else fallback_ran(o, data)):
        return None
    return "neither the reply, nor the fallback, nor the front's own error"


def judge_reply_case(reply: bytes, stdin: bytes, o: Outcome) -> str | None:
    if why := abnormal(o):
        return why
    want = expected_reply(reply)
    if want is None:
        return None if fallback_ran(o, stdin) else "a reply that is not one, but no fallback"
    return None if (o.rc, o.out, o.err) == want else f"the reply says {want!r}"[:400]


@dataclass
class Daemons:
    fast: FuzzDaemon             # answers FAST to any stdin
    reply: FuzzDaemon            # answers replies[stdin's "fuzz_case"]
    replies: dict[int, bytes]


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    replies: dict[int, bytes] = {}

    def by_case(stdin: bytes) -> bytes:
        return replies[json.loads(stdin)["fuzz_case"]]

    with FuzzDaemon(str(tmp_path / "fast.sock"), lambda _stdin: FAST_REPLY) as fast, \
            FuzzDaemon(str(tmp_path / "reply.sock"), by_case) as reply:
        yield Daemons(fast, reply, replies)


def test_front_fuzz(fronts: Fronts, daemons: Daemons,
                    capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    fast, reply_daemon, table = daemons.fast, daemons.reply, daemons.replies
    inputs = stdin_cases(rng, STDIN_CASES, fast.path, fronts)
    replies = reply_cases(rng, REPLY_CASES)

    def stdin_job(n: int) -> Failure | None:
        how, data = inputs[n]
        alone = n % 2 == 1
        o = run_front(fronts.alone if alone else fronts.with_fallback, data, fronts)
        why = judge_stdin_case(data, alone, o, fast)
        return Failure(f"stdin case {n} ({how}, alone={alone})", why, data, o) if why else None

    def reply_job(n: int) -> Failure | None:
        how, line = replies[n]
        table[n] = line
        stdin = json.dumps({"cniVersion": "1.0.0", "name": "fuzz", "type": "terway",
                            "daemon_socket": reply_daemon.path, "rpc_timeout": 30,
                            "fuzz_case": n}).encode()
        o = run_front(fronts.with_fallback, stdin, fronts)
        why = judge_reply_case(line, stdin, o)
        return Failure(f"reply case {n} ({how})", why, line, o) if why else None

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(stdin_job, range(len(inputs))))
        results += pool.map(reply_job, range(len(replies)))
    failures = [f for f in results if f is not None]
    cases = len(inputs) + len(replies)
    with capsys.disabled():
        print(f"\nfront fuzz: cases={cases} seed={SEED} failures={len(failures)}")
    assert not fast.bad and not reply_daemon.bad, (fast.bad + reply_daemon.bad)[:5]
    assert not failures, "\n".join(str(f) for f in failures[:8])


def test_the_oracle_agrees_with_known_replies() -> None:
    """The fuzz test's reading of a reply, on replies whose meaning is not in doubt."""
    ok = b'{"v":1,"ok":true,"result":{"exit":3,"stdout":"QUI=","stderr":""}}\n'
    assert expected_reply(ok) == (3, b"AB", b"")
    assert expected_reply(b' {"result":{"stderr":"\\u0051Q==","exit":0,"stdout":"\\/w=="},'
                          b'"x":[1e999,{"exit":5}],"ok":true,"v":1}\r\n') == (0, b"\xff", b"A")
    for bad in (ok[:-1], ok.replace(b"3", b"1e2"), ok.replace(b"3", b"0.5"),
                ok.replace(b"3", b"256"), ok.replace(b"3", b"007"), ok.replace(b"3", b"-0"),
                ok.replace(b"QUI=", b"QUJ="), ok.replace(b"QUI=", b"QUI"),
                ok.replace(b'"v":1', b'"v":1,"v":1'), ok.replace(b"true", b"1"),
                ok.replace(b'"stderr":""', b'"stderr":"","x":"\\ud800"'),
                ok.replace(b"{", b"\xef\xbb\xbf{", 1)):
        assert expected_reply(bad) is None, bad


@pytest.mark.parametrize("stdin", [DIRECTORY, CLOSED])
def test_unreadable_stdin_is_memory_safe(fronts: Fronts, stdin: str) -> None:
    """A stdin that cannot be read (a directory: EISDIR on the first read) left the buffer
    unterminated and the socket guess read uninitialised heap; now the Python plugin gets the
    stdin as it is. A closed stdin reads as empty."""
    o = run_front(fronts.with_fallback, stdin, fronts)
    assert abnormal(o) is None, o.err.decode(errors="replace")
    assert fallback_ran(o, stdin), o
    o = run_front(fronts.alone, stdin, fronts)
    assert abnormal(o) is None, o.err.decode(errors="replace")
    assert own_error(o), o
