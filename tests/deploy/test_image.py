"""The node image and the test-bed images, as built by scripts/kube/images.sh (docs/image.md).

Runs the script (it reuses its cache when nothing changed) or takes its output directory from
``TERWAY_KUBE_IMAGES`` (``nox -s kube`` sets it), loads each docker-archive into podman, and
checks what a node gets from the image: ``terwayd install-cni`` installs the static native front
and its Python fallback (which then answer on the host, outside the image), only the core
dependencies are inside, the commands work; the pause and busybox images do their job; and the
archives import into containerd the way the test bed imports them.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
REFS = {
    "terway": f"ghcr.io/terway-py/terway:v{VERSION}",
    "pause": "localhost/terway-testbed/pause:1",
    "busybox": "localhost/terway-testbed/busybox:1",
}
# Not in the node image: the simulator's, the emulator's and the tests' packages.
DEV_ONLY = ("simpy", "matplotlib", "docker", "responses", "emulator", "simulator", "pip",
            "setuptools")
APPLETS = ("sh", "sleep", "wget", "httpd", "nc", "ip", "ping", "cat", "echo", "ls")
# bytes, uncompressed: 423 MB with Calico Felix (115 MB), 288 MB before it (docs/image.md)
SIZE_BUDGET = 450_000_000

# Run by `nox -s kube` (next to the test bed, which builds the same images), not `nox -s tests`.
pytestmark = [pytest.mark.privileged, pytest.mark.kube]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        why = f"needs {tool}"
        if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
            pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but this test cannot run: {why}")
        pytest.skip(why)
    return path


def _run(*argv: str, check: bool = True, timeout: float = 300,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          input=stdin, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _in_image(ref: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("podman", "run", "--rm", "--network", "none", ref, *argv, check=check)


def _elf_is_static(data: bytes) -> bool:
    """An x86-64 ELF executable without a program interpreter (PT_INTERP) is statically linked
    (a static-pie has PT_DYNAMIC but still no interpreter)."""
    assert data[:4] == b"\x7fELF", f"not an ELF file: {data[:16]!r}"
    assert data[4] == 2, "not a 64-bit ELF"
    e_type, = struct.unpack_from("<H", data, 16)
    assert e_type in (2, 3), f"ELF type {e_type} is not an executable"
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types   # PT_INTERP


@pytest.fixture(scope="module")
def images() -> dict[str, dict[str, Any]]:
    """images.json of images.sh's output directory; each archive loaded into podman (so what
    the tests run is what the tars hold)."""
    _need("podman")
    given = os.environ.get("TERWAY_KUBE_IMAGES")
    if given:
        out = Path(given)
    else:
        proc = _run("bash", str(ROOT / "scripts" / "kube" / "images.sh"), check=False,
                    timeout=1800)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            pytest.fail(f"images.sh exited {proc.returncode}:\n{proc.stderr[-6000:]}")
        out = Path(lines[-1])
    listed: dict[str, dict[str, Any]] = json.loads((out / "images.json").read_text())
    for entry in listed.values():
        _run("podman", "load", "-q", "-i", str(entry["archive"]))
    return listed


@pytest.fixture(scope="module")
def terway(images: dict[str, dict[str, Any]]) -> str:
    return str(images["terway"]["ref"])


def test_images_json_names_three_docker_archives(images: dict[str, dict[str, Any]],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert sorted(images) == sorted(REFS)
    for name, entry in images.items():
        assert entry["ref"] == REFS[name]
        archive = Path(entry["archive"])
        assert archive.is_absolute() and archive.is_file(), archive
        assert isinstance(entry["size_bytes"], int) and entry["size_bytes"] > 0, entry
        with tarfile.open(archive) as tar:       # docker-archive: what `ctr import` reads
            member = tar.extractfile("manifest.json")
            assert member is not None
            manifest = json.loads(member.read())
        assert [m["RepoTags"] for m in manifest] == [[entry["ref"]]], manifest
    report = [f"  {e['ref']}: {e['size_bytes'] / 1e6:.1f} MB uncompressed "
              f"({e['size_bytes']} bytes), archive {Path(e['archive']).stat().st_size} bytes"
              for e in images.values()]
    with capsys.disabled():
        print("\nimage sizes:\n" + "\n".join(report))
    assert images["terway"]["size_bytes"] < SIZE_BUDGET, images["terway"]


def test_install_cni_from_the_image_installs_native_front_and_fallback(terway: str) -> None:
    with tempfile.TemporaryDirectory(prefix="terway-install-cni.") as tmp:
        bin_dir, conf_dir, cm = Path(tmp, "bin"), Path(tmp, "net.d"), Path(tmp, "eni")
        for d in (bin_dir, conf_dir, cm):
            d.mkdir()
        (cm / "10-terway.conf").write_text(json.dumps(
            {"cniVersion": "0.4.0", "name": "terway", "type": "terway",
             "eniip_virtual_type": "Veth", "capabilities": {"bandwidth": True}}))
        (cm / "eni_conf").write_text(json.dumps({"version": "1", "max_pool_size": 5}))
        out = _run("podman", "run", "--rm", "--network", "none",
                   "-v", f"{bin_dir}:/opt/cni/bin", "-v", f"{conf_dir}:/etc/cni/net.d",
                   "-v", f"{cm}:/etc/eni:ro", terway,
                   "terwayd", "install-cni", "--bin-dir", "/opt/cni/bin",
                   "--conf-dir", "/etc/cni/net.d", "--configmap-dir", "/etc/eni").stdout
        assert "native front" in out, out

        front = bin_dir / "terway"
        assert front.is_file() and os.access(front, os.X_OK), front
        assert _elf_is_static(front.read_bytes()), f"{front} is dynamically linked"
        fallback = bin_dir / "terway-python"
        assert os.access(fallback, os.X_OK), fallback
        assert fallback.read_text().startswith("#!/usr/bin/python3 -IS\n"), fallback.read_text()
        assert (bin_dir / "terway.d" / "terway" / "cni" / "main.py").is_file()
        conflist = json.loads((conf_dir / "10-terway.conflist").read_text())
        assert conflist["name"] == "terway" and conflist["cniVersion"] == "0.4.0", conflist
        assert [p["type"] for p in conflist["plugins"]] == ["terway"], conflist

        # On the host, where the DaemonSet puts it (/opt/cni/bin, bound in a private mount
        # namespace): with no daemon to answer, the front runs the fallback, which runs on the
        # host's python3 from the bundle alone.
        if not Path("/usr/bin/python3").exists():
            pytest.skip("the host has no /usr/bin/python3 to run the fallback")
        netconf = json.dumps({"cniVersion": "0.4.0", "name": "terway", "type": "terway",
                              "daemon_socket": f"{tmp}/no-daemon.sock"})
        proc = _run("unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mkdir -p /opt/cni/bin && mount --bind "$1" /opt/cni/bin '
                    "&& CNI_COMMAND=VERSION exec /opt/cni/bin/terway", "sh", str(bin_dir),
                    stdin=netconf)
        assert "1.0.0" in json.loads(proc.stdout)["supportedVersions"], proc.stdout


def test_node_image_holds_core_dependencies_only(terway: str) -> None:
    probe = (
        "import importlib.util, json, ctypes.util, sqlite3\n"
        "import terway.daemon.main, terway.cni.main, terway.cli.main\n"
        "import kubernetes.client, kubernetes.config, pyroute2, prometheus_client\n"
        "import alibabacloud_ecs20140526.client, alibabacloud_vpc20160428.client\n"
        "import alibabacloud_credentials, cryptography\n"
        f"print(json.dumps({{'present': [m for m in {DEV_ONLY!r} "
        "if importlib.util.find_spec(m)], 'libc': ctypes.util.find_library('c')}))\n"
    )
    found = json.loads(_in_image(terway, "python3", "-c", probe).stdout)
    assert found["present"] == [], f"not for a node: {found['present']}"
    assert found["libc"], "ctypes cannot find libc (terway/datapath/netns.py needs it)"
    tools = _in_image(terway, "sh", "-c",
                      "for t in gcc cc pip pip3 terway-emulator terway-sim; do command -v $t; done;"
                      " ls -d /root/.cache /src 2>/dev/null; true").stdout
    assert tools.strip() == "", f"a compiler, pip, a cache or sources in the image:\n{tools}"
    have = _in_image(terway, "sh", "-c",
                     "for t in ip tc iptables python3; do command -v $t; done").stdout.split()
    assert [Path(p).name for p in have] == ["ip", "tc", "iptables", "python3"], have


def test_node_image_commands(terway: str) -> None:
    for cmd in ("terwayd", "terway-cli"):
        proc = _in_image(terway, cmd, "--help")
        assert proc.stdout.startswith(f"usage: {cmd}"), proc.stdout
    assert _in_image(terway, "sh", "-c", "command -v terway").stdout.strip() == \
        "/opt/terway/bin/terway"
    config = json.loads(_run("podman", "image", "inspect", "--format", "{{json .Config}}",
                             terway).stdout)
    assert not config.get("Entrypoint"), config
    assert config.get("User", "") in ("", "root", "0"), config


def test_pause_image_is_static_and_stops_on_sigterm(images: dict[str, dict[str, Any]]) -> None:
    ref = str(images["pause"]["ref"])
    name = f"terway-test-pause-{os.getpid()}"
    _run("podman", "run", "-d", "--name", name, "--network", "none", ref)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _run("podman", "cp", f"{name}:/pause", f"{tmp}/pause")
            assert _elf_is_static(Path(tmp, "pause").read_bytes()), "pause is not static"
        assert _run("podman", "inspect", "--format", "{{.State.Running}}", name).stdout.strip() \
            == "true"
        _run("podman", "stop", "-t", "20", name)   # SIGTERM; SIGKILL (exit 137) only if ignored
        code = _run("podman", "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", f"pause exited {code} on SIGTERM"
    finally:
        _run("podman", "rm", "-f", name, check=False)


def test_busybox_image_applets_and_http(images: dict[str, dict[str, Any]]) -> None:
    ref = str(images["busybox"]["ref"])
    config = json.loads(_run("podman", "image", "inspect", "--format", "{{json .Config}}",
                             ref).stdout)
    assert config.get("Cmd") == ["sh"] and not config.get("Entrypoint"), config
    script = ("for a in " + " ".join(APPLETS) + "; do readlink /bin/$a || echo no $a; done; "
              "httpd -p 127.0.0.1:8080 -h /etc && wget -q -O- http://127.0.0.1:8080/passwd; "
              "ip -o link show lo")
    out = _in_image(ref, "sh", "-c", script).stdout
    lines = out.splitlines()
    assert lines[:len(APPLETS)] == ["busybox"] * len(APPLETS), out   # links exec can find
    assert "root:x:0:0:" in out, out                 # served by httpd, fetched by wget
    assert ": lo:" in lines[-1], out                 # ip


@pytest.fixture()
def containerd() -> Iterator[tuple[str, Path]]:
    """A throwaway containerd 1.6 (own root, state and socket under a temp dir; no CRI)."""
    daemon = _need("containerd")
    ctr = _need("ctr")
    tmp = Path(tempfile.mkdtemp(prefix="terway-ctr."))
    sock = tmp / "containerd.sock"
    (tmp / "config.toml").write_text(
        f'version = 2\nroot = "{tmp}/root"\nstate = "{tmp}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
    log = (tmp / "containerd.log").open("w")
    proc = subprocess.Popen([daemon, "--config", str(tmp / "config.toml")], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if _run(ctr, "--address", str(sock), "version", check=False).returncode == 0:
                break
            if proc.poll() is not None:
                pytest.fail(f"containerd exited {proc.returncode}: "
                            f"{(tmp / 'containerd.log').read_text()[-3000:]}")
            time.sleep(0.1)
        yield ctr, sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", str(tmp / "state")], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def test_archives_import_into_containerd(images: dict[str, dict[str, Any]],
                                         containerd: tuple[str, Path]) -> None:
    ctr, sock = containerd
    base = [ctr, "--address", str(sock), "-n", "k8s.io"]
    for entry in images.values():
        _run(*base, "images", "import", str(entry["archive"]))
    listed = _run(*base, "images", "ls", "-q").stdout.split()
    assert sorted(listed) == sorted(REFS.values()), listed
    name = f"terway-test-{os.getpid()}"
    out = _run(*base, "run", "--rm", REFS["terway"], name, "terway-cli", "--help").stdout
    assert out.startswith("usage: terway-cli"), out
