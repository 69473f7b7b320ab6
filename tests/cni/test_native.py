"""The native plugin front (terway/cni/shim.c): fast path through the daemon, and fallbacks.

tests/cni/test_plugin.py already runs every plugin test through the front too; these cover
what only the front does: taking the fast path with no Python at all, each way of falling back
to the Python plugin, and its own error when neither can answer.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from terway.cni import native
from terway.rpc import cnicodec as wire, messages as rpc
from tests.cni.fakedaemon import FakeDaemon
from tests.cni.plugin import PYTHON_PLUGIN, cni_env, misbehaving_daemon, netconf, run


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    with FakeDaemon() as d:
        yield d


@pytest.fixture
def front_alone(native_plugin: str, tmp_path: Path) -> str:
    """The front with no Python fallback beside it: any fallback would show."""
    path = tmp_path / "terway"
    shutil.copy(native_plugin, path)
    return str(path)


def test_source_builds_without_warnings(tmp_path: Path) -> None:
    """The installed front is built with -Werror, so a warning fails the build (and the image
    build) instead of going unread."""
    cc = native.compiler()
    if cc is None:
        pytest.skip("no C compiler")
    assert {"-Wall", "-Wextra", "-Werror"} <= set(native.CFLAGS)
    for opt in ("-O0", "-O2", "-O3"):
        proc = subprocess.run([cc, *native.CFLAGS, opt, "-o", str(tmp_path / "t"),
                               str(native.SOURCE)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", ["ADD", "CHECK", "DEL", "STATUS", "VERSION"])
def test_fast_path_answers_exactly_as_the_python_plugin(
    daemon: FakeDaemon, front_alone: str, command: str
) -> None:
    conf = netconf(daemon.socket, prevResult={"ips": [{"address": "10.9.0.11/32"}]})
    want = run(cni_env(command), conf, argv=PYTHON_PLUGIN)
    calls = list(daemon.calls)
    got = run(cni_env(command), conf, argv=[front_alone])
    assert got == want
    assert len(daemon.exec_calls) == 1
    assert daemon.calls[len(calls):] == calls  # the same daemon requests, in the same order


def test_fast_path_carries_any_bytes(daemon: FakeDaemon, front_alone: str) -> None:
    head = b'{"daemon_socket": "' + daemon.socket.encode() + b'", "cniVersion": "1.0.0"'
    for stdin in (head + b', "name": "\xff\xfe"}',              # not UTF-8
                  head + b', "name": "t\\u00e9\x7f\\"", "x": "\x01"}',  # escapes, controls
                  head):                                          # truncated
        assert run(cni_env("ADD"), stdin, argv=[front_alone]) == run(
            cni_env("ADD"), stdin, argv=PYTHON_PLUGIN)
    assert len(daemon.exec_calls) == 3


def test_an_older_daemon_means_the_python_plugin(daemon: FakeDaemon, native_plugin: str) -> None:
    daemon.exec_cni = False
    rc, out, _ = run(cni_env("ADD"), netconf(daemon.socket), argv=[native_plugin])
    assert rc == 0 and out["ips"][0]["address"] == "10.9.0.11/32"
    assert len(daemon.exec_calls) == 1 and [m for m, _ in daemon.calls] == ["AllocIP"]


def test_a_large_netconf_goes_to_the_python_plugin(daemon: FakeDaemon, native_plugin: str) -> None:
    conf = netconf(daemon.socket, padding="x" * (600 << 10))  # past the fast path's limit
    rc, out, _ = run(cni_env("ADD"), conf, argv=[native_plugin])
    assert rc == 0 and out["ips"][0]["address"] == "10.9.0.11/32"
    assert daemon.exec_calls == [] and [m for m, _ in daemon.calls] == ["AllocIP"]


def test_an_ambiguous_socket_key_is_left_to_the_python_plugin(
    daemon: FakeDaemon, native_plugin: str
) -> None:
    """``daemon_socket`` twice: the front does not guess (it tries the default socket, absent
    here); the Python plugin reads the top-level key."""
    conf = netconf(daemon.socket, args={"daemon_socket": "/elsewhere.sock"})
    rc, out, _ = run(cni_env("ADD"), conf, argv=[native_plugin])
    assert rc == 0 and out["ips"][0]["address"] == "10.9.0.11/32"
    assert daemon.exec_calls == []


def test_a_daemon_hanging_up_mid_request_means_the_python_plugin(
    tmp_path: Path, native_plugin: str
) -> None:
    """No SIGPIPE death: the front falls back, and the Python plugin reports what it sees."""
    conf = netconf(str(tmp_path / "rude.sock"), padding="x" * (400 << 10))  # still sending
    with misbehaving_daemon(conf["daemon_socket"], lambda conn: None):
        got = run(cni_env("ADD"), conf, argv=[native_plugin])
        want = run(cni_env("ADD"), conf, argv=PYTHON_PLUGIN)
    assert got[0] == want[0] == 1 and got[1]["code"] == want[1]["code"] in (100, 102)
    # Which of EPIPE or ECONNRESET the sender meets depends on timing (seen flip under load):
    # the same answer but for that errno.
    assert _errno_blind(got) == _errno_blind(want)


def _errno_blind(outcome: object) -> str:
    import re

    text = json.dumps(outcome)
    return re.sub(r"\[Errno \d+\] (Broken pipe|Connection reset by peer)", "[Errno N]", text)


def test_no_daemon_and_no_python_is_a_cni_error(front_alone: str, tmp_path: Path) -> None:
    conf = netconf(str(tmp_path / "none.sock"), version="0.4.0")
    rc, out, err = run(cni_env("ADD"), conf, argv=[front_alone])
    assert rc == 1
    assert out["cniVersion"] == "0.4.0" and out["code"] == 11
    assert f"{front_alone}-python cannot run" in out["msg"] and "No such file" in out["msg"]
    assert out["msg"] in err


def test_exec_cni_is_served_by_the_daemon_the_netconf_names(tmp_path: Path) -> None:
    """The front only guesses the socket; the daemon it reached forwards to the right one."""
    with FakeDaemon() as reached, FakeDaemon() as named:
        env = b"".join(f"{k}={v}".encode() + b"\0" for k, v in cni_env("ADD").items())
        params = {"env": base64.b64encode(env).decode(),
                  "stdin": base64.b64encode(json.dumps(netconf(named.socket)).encode()).decode()}
        result = wire.call(reached.socket, 10, "ExecCNI", params)
        assert result["exit"] == 0
        assert json.loads(base64.b64decode(result["stdout"]))["ips"][0]["address"]
        assert reached.calls == [] and [m for m, _ in named.calls] == ["AllocIP"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"env": "!!", "stdin": ""}, "params.env: not base64"),
        ({"env": base64.b64encode(b"CNI_COMMAND\0").decode(), "stdin": ""},
         "params.env: entry without '='"),
        ({"env": "", "stdin": "é"}, "params.stdin: not base64"),
        ({"env": ""}, "params.stdin"),
    ],
)
def test_bad_exec_cni_requests_are_refused(
    daemon: FakeDaemon, params: dict[str, str], needle: str
) -> None:
    with pytest.raises(rpc.RpcError) as info:
        wire.call(daemon.socket, 10, "ExecCNI", params)
    assert info.value.code == rpc.ERR_INVALID_REQUEST and needle in info.value.message
    assert daemon.calls == []


def test_install_without_a_compiler_is_the_python_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terway.cni.launcher import write_plugin

    monkeypatch.setattr(native, "CACHE", tmp_path / "cache")
    monkeypatch.setenv("CC", "no-such-cc")
    path = str(tmp_path / "terway")
    assert write_plugin(path) is False
    assert Path(path).read_text() == Path(path + "-python").read_text()
    assert os.access(path, os.X_OK)


# ---- the reply, read as JSON ------------------------------------------------------------------

OUT = b'{"cniVersion":"1.0.0","ips":[]} "stderr":"QUFB" \xff\n'
ERR = b"terway: a warning\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return data


def replying(reply: bytes) -> Callable[[socket.socket], None]:
    """A daemon's answer: read the request line, send ``reply``, hang up."""

    def answer(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(reply)

    return answer


def _front(argv: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, env={"PATH": os.environ.get("PATH", ""),
                                                  **cni_env("ADD")},
                          capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("reply", [
    # key order and whitespace do not matter
    ('{ "result" : { "stderr" : "%(err)s" , "exit" : 3 , "stdout" : "%(out)s" } ,\t"ok" : true'
     ' , "v" : 1 }\r\n'),
    # unknown keys are skipped, also ones holding the known names
    ('{"v":1,"ok":true,"trace":[1,-2.5e3,true,null,{"stderr":"ZGVjb3k="}],"result":{"exit":3,'
     '"note":{"stderr":"ZGVjb3k=","exit":9},"stdout":"%(out)s","stderr":"%(err)s","x":"\\""}}\n'),
    # string escapes inside the base64: \/ and \u0041 are the characters they stand for
    '{"v":1,"ok":true,"result":{"exit":3,"stdout":"%(out_escaped)s","stderr":"%(err)s"}}\n',
])
def test_a_reply_is_read_as_json(tmp_path: Path, front_alone: str, reply: str) -> None:
    """Read with a JSON reader, not searched for: the stdout above holds the text
    ``"stderr":"`` and there are decoys, which once corrupted both streams."""
    out = b64(OUT)
    assert "/" in out
    escaped = out.replace("/", "\\/").replace("A", "\\u0041").replace("e", "\\u0065")
    line = reply % {"out": out, "err": b64(ERR), "out_escaped": escaped}
    conf = netconf(str(tmp_path / "d.sock"))
    with misbehaving_daemon(conf["daemon_socket"], replying(line.encode())):
        proc = _front([front_alone], json.dumps(conf).encode())
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, OUT, ERR)


@pytest.mark.parametrize("bad", [
    '"exit":1e2', '"exit":0.5', '"exit":-1', '"exit":256', '"exit":007', '"exit":"0"',
    '"exit":true', '"exit":3,"exit":3', '"stdout":"QUI"', '"stdout":"QUJ="', '"stdout":"Q=I="',
    '"stdout":"\\u00e9"', '"stdout":"QUI=\\x"', '"stdout":1',
])
def test_a_malformed_reply_means_the_fallback(tmp_path: Path, front_alone: str, bad: str) -> None:
    """Anything but a whole, well-typed result is not taken: the fallback (absent here, so the
    front's own error shows that it was tried)."""
    fields = {"exit": '"exit":3', "stdout": '"stdout":"QUI="', "stderr": '"stderr":""'}
    fields[bad[1:bad.index('"', 1)]] = bad
    line = '{"v":1,"ok":true,"result":{' + ",".join(fields.values()) + "}}\n"
    conf = netconf(str(tmp_path / "d.sock"))
    with misbehaving_daemon(conf["daemon_socket"], replying(line.encode())):
        proc = _front([front_alone], json.dumps(conf).encode())
    assert proc.returncode == 1, proc
    assert json.loads(proc.stdout)["code"] == 11 and b"-python cannot run" in proc.stdout


def test_the_fronts_own_error_is_valid_utf8_json(tmp_path: Path, native_plugin: str) -> None:
    """A cniVersion and a path with bytes that are not UTF-8: replaced, never echoed."""
    bin_dir = tmp_path / os.fsdecode(b"bin\xff\xc0\x80")
    bin_dir.mkdir()
    front = bin_dir / "terway"
    shutil.copy(native_plugin, front)
    stdin = (b'{"cniVersion": "1.0\xff\xfe\x01", "daemon_socket": "'
             + str(tmp_path / "none.sock").encode() + b'"}')
    proc = _front([str(front)], stdin)
    assert proc.returncode == 1
    out = json.loads(proc.stdout.decode("utf-8"))  # strict: raises on an invalid byte
    assert out["cniVersion"] == "1.0\ufffd\ufffd\x01" and out["code"] == 11
    assert "bin\ufffd\ufffd\ufffd/terway-python cannot run" in out["msg"]


# ---- the deadline -----------------------------------------------------------------------------


def _silent(stop: threading.Event) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        _read_request(conn)
        stop.wait(30)

    return answer


def _trickling(stop: threading.Event) -> Callable[[socket.socket], None]:
    """A byte of a reply every 0.2 s, never a whole line: the deadline is for all of it."""

    def answer(conn: socket.socket) -> None:
        _read_request(conn)
        for byte in b'{"v":1,"ok":true,"result":{"exit":0,"stdout":"' + b"A" * 1000:
            if stop.wait(0.2):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return

    return answer


def _run_stalled(path: str, kind: str, stdin: bytes,
                 argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run the front against a daemon at ``path`` that stalls the way ``kind`` says."""
    stop = threading.Event()
    try:
        if kind in ("silent", "trickling"):
            answer = (_silent if kind == "silent" else _trickling)(stop)
            with misbehaving_daemon(path, answer):
                return _front(argv, stdin)
        with socket.socket(socket.AF_UNIX) as srv:
            srv.bind(path)
            if kind == "never accepted":  # a stopped daemon: the kernel queues the connect
                srv.listen(8)
                return _front(argv, stdin)
            srv.listen(0)  # "backlog full": one connection waits, so the front's connect does
            with socket.socket(socket.AF_UNIX) as first:
                first.connect(path)
                return _front(argv, stdin)
    finally:
        stop.set()


@pytest.mark.parametrize("kind", ["silent", "trickling", "never accepted", "backlog full"])
def test_no_reply_within_rpc_timeout_is_a_daemon_timeout(
    tmp_path: Path, native_plugin: str, kind: str
) -> None:
    """No fallback once the deadline passed (it would wait as long again while the daemon may
    still work on the request): CNI error 101. The hang guard is _front's 60 s timeout."""
    conf = netconf(str(tmp_path / "stalled.sock"), version="0.4.0", rpc_timeout=1)
    proc = _run_stalled(conf["daemon_socket"], kind, json.dumps(conf).encode(), [native_plugin])
    assert proc.returncode == 1, proc
    out = json.loads(proc.stdout)
    msg = f"terway: no reply from the terway daemon at {conf['daemon_socket']} within 1s"
    assert out == {"cniVersion": "0.4.0", "code": 101, "msg": msg, "details": ""}
    assert proc.stderr.decode() == msg + "\n"


def test_rpc_timeout_bounds_the_whole_exchange(tmp_path: Path, native_plugin: str) -> None:
    """rpc_timeout 2 against a daemon trickling a byte every 0.2 s: each byte does not reset
    it."""
    conf = netconf(str(tmp_path / "slow.sock"), rpc_timeout=2)
    proc = _run_stalled(conf["daemon_socket"], "trickling", json.dumps(conf).encode(),
                        [native_plugin])
    assert json.loads(proc.stdout)["msg"].endswith("within 2s")


NOT_A_TIMEOUT = ("0", "-1", "3601", "1.5", "1e0", '"1"', "true", "01", "null",
                 '1, "args": {"rpc_timeout": 1}')


def test_an_rpc_timeout_not_in_1_to_3600_means_the_default(
    tmp_path: Path, native_plugin: str
) -> None:
    """Only a plain integer in 1..3600 is taken; anything else means 120 s (and the Python
    plugin, run by the daemon, rejects it with its own error). All still waiting after 2 s
    shows it: with rpc_timeout 1 they would have ended."""
    path = str(tmp_path / "stopped.sock")
    procs = []
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(len(NOT_A_TIMEOUT))
        try:
            for n, value in enumerate(NOT_A_TIMEOUT):
                stdin = tmp_path / f"stdin{n}"
                stdin.write_text(f'{{"cniVersion": "1.0.0", "daemon_socket": "{path}", '
                                 f'"rpc_timeout": {value}}}')
                with stdin.open("rb") as fh:
                    procs.append(subprocess.Popen([native_plugin], stdin=fh, env=cni_env("ADD"),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            time.sleep(2)
            ended = {v: p.poll() for v, p in zip(NOT_A_TIMEOUT, procs, strict=True)
                     if p.poll() is not None}
            assert ended == {}
        finally:
            for proc in procs:
                proc.kill()
                proc.communicate()


# ---- where the binary comes from ---------------------------------------------------------------


@pytest.fixture
def read_only_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package cache that cannot be written (root may write anywhere, so the build refuses
    it as a read-only tree would) and a temp dir of the test's own; returns the temp dir."""
    if native.compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(native, "CACHE", tmp_path / "site-packages" / "_native")
    real_build = native.build

    def build(dest: Path, cc: str) -> None:
        if dest.parent == native.CACHE:
            raise PermissionError(13, "Permission denied", str(dest))
        real_build(dest, cc)

    monkeypatch.setattr(native, "build", build)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _plant(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho planted\n")
    path.chmod(0o755)


def _is_front(path: Path) -> bool:
    return path.read_bytes().startswith(b"\x7fELF")


def test_a_binary_planted_at_the_old_shared_path_is_not_used(read_only_package: Path) -> None:
    """The old fallback reused ``<tmp>/terway-native/<name>`` if present: anyone's file, then
    installed into the CNI bin dir and run as root."""
    planted = read_only_package / "terway-native" / native.cached_path().name
    _plant(planted)
    path = native.native_plugin()
    assert path is not None and path != planted and _is_front(path)
    assert path.parent == native.user_cache()
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    assert native.native_plugin() == path  # the private cache is reused


@pytest.mark.parametrize("how", ["dir world-writable", "dir someone else's", "file writable"])
def test_an_untrusted_user_cache_is_not_used(read_only_package: Path, how: str) -> None:
    cache = native.user_cache()
    planted = cache / native.cached_path().name
    _plant(planted)
    cache.chmod(0o700)
    if how == "dir world-writable":
        cache.chmod(0o777)
    elif how == "dir someone else's":
        if os.geteuid() != 0:
            pytest.skip("needs root to give a directory away")
        os.chown(cache, 65534, 65534)
    else:
        planted.chmod(0o777)
    path = native.native_plugin()
    assert path is not None and _is_front(path)
    if how == "file writable":  # our own directory: the file is built again, in place
        assert path == planted and (path.stat().st_mode & 0o022) == 0
    else:  # a directory that is not ours alone is neither used nor built into
        assert planted.read_text() == "#!/bin/sh\necho planted\n"
        assert path.parent.parent == read_only_package and path.parent != cache
        assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_a_writable_package_cache_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if native.compiler() is None:
        pytest.skip("no C compiler")
    cache = tmp_path / "_native"
    monkeypatch.setattr(native, "CACHE", cache)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = cache / native.cached_path().name
    _plant(planted)
    cache.chmod(0o777)
    path = native.native_plugin()
    assert path is not None and path != planted and _is_front(path)


def test_no_temporary_directory_at_all_still_finds_the_package_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DaemonSet's install-cni has a read-only root and no /tmp: asking for the per-user
    cache raised FileNotFoundError before the image's package cache was even looked at."""
    if native.compiler() is None:
        pytest.skip("no C compiler")
    cache = tmp_path / "_native"
    cache.mkdir(mode=0o755)
    monkeypatch.setattr(native, "CACHE", cache)
    native.build(cache / native.cached_path().name, native.compiler() or "cc")

    def no_tempdir() -> str:
        raise FileNotFoundError(2, "No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", no_tempdir)
    assert native.native_plugin() == cache / native.cached_path().name
