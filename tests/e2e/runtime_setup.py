"""Real container runtimes for tests/e2e: packages, podman's CNI config, a busybox image, dockerd.

One implementation for CI (``scripts/e2e/install-runtimes.sh`` runs ``install`` here) and the
pytest session fixtures (which call :func:`ensure_podman` / :func:`ensure_docker`). Everything is
idempotent. Self-contained on purpose (stdlib + the ``docker`` package, imported lazily) so it
runs as a plain script: ``python3 tests/e2e/runtime_setup.py install|status|stop-dockerd``.

Images cannot be pulled (no registry access): the image is a rootfs built from Debian's
``busybox-static`` (one static binary + an applet symlink per command) and imported.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

IMAGE = "localhost/terway-busybox:latest"
APT_PACKAGES = ("podman", "containernetworking-plugins", "busybox-static", "docker.io", "iproute2")
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
CNI_CONF_DIR = Path("/etc/cni/net.d")
REF_PLUGIN_DIR = Path("/usr/lib/cni")
# Our plugin is not copied into /usr/lib/cni: a dedicated dir holds it (native front + Python
# fallback) and containers.conf lists it in cni_plugin_dirs.
PLUGIN_DIR = Path("/opt/terway-e2e/cni/bin")
WORK_DIR = Path("/var/lib/terway-e2e")
DOCKER_SOCK = Path("/var/run/docker.sock")
DOCKERD_LOG = WORK_DIR / "dockerd.log"
DOCKERD_PIDFILE = WORK_DIR / "dockerd.pid"
BUSYBOX = Path("/bin/busybox")
# dockerd must not touch the host network other helpers test on: no bridge, no iptables
# (docker's FORWARD DROP policy would break root-namespace forwarding), containers use
# ``--network none`` and get their interface from our CNI plugin.
DOCKERD_ARGS = ("--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false",
                "--ip-masq=false", "--host", f"unix://{DOCKER_SOCK}")


class RuntimeSetupError(RuntimeError):
    """A runtime could not be prepared; the message says which step and why."""


def log(msg: str) -> None:
    print(f"runtime-setup: {msg}", file=sys.stderr, flush=True)


def run(*cmd: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, timeout=timeout, check=False, text=True)
    if check and proc.returncode != 0:
        raise RuntimeSetupError(f"`{' '.join(cmd)}` exited {proc.returncode}: "
                                f"{proc.stderr.strip()[-2000:]}")
    return proc


# -- packages ---------------------------------------------------------------------------------

def missing_packages(names: tuple[str, ...] = APT_PACKAGES) -> list[str]:
    return [p for p in names if run("dpkg", "-s", p, check=False).returncode != 0]


def ensure_packages(names: tuple[str, ...] = APT_PACKAGES) -> None:
    """apt-get update + install what is missing (waits for another apt's lock)."""
    missing = missing_packages(names)
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeSetupError(f"packages missing and not root: {missing}")
    log(f"installing {' '.join(missing)}")
    os.environ["DEBIAN_FRONTEND"] = "noninteractive"
    lock = ("-o", "DPkg::Lock::Timeout=900")
    run("apt-get", *lock, "update", "-qq", timeout=1200)
    run("apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *missing,
        timeout=1800)


# -- podman -----------------------------------------------------------------------------------

def containers_conf_text(plugin_dir: Path = PLUGIN_DIR) -> str:
    return ("# written by terway-py tests/e2e/runtime_setup.py\n"
            "[containers]\n"
            "default_ulimits = []\n\n"
            "[engine]\n"
            '# crun refuses this host\'s hybrid cgroup v1/v2 layout; runc (from docker.io) works\n'
            'runtime = "runc"\n\n'
            "[network]\n"
            'network_backend = "cni"\n'
            f'cni_plugin_dirs = ["{REF_PLUGIN_DIR}", "{plugin_dir}"]\n'
            f'network_config_dir = "{CNI_CONF_DIR}"\n')


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def install_plugin(plugin_dir: Path = PLUGIN_DIR) -> Path:
    """``<plugin_dir>/terway``: the native front, with the Python plugin of this checkout as
    ``terway-python`` beside it (``python -m terway.cni.launcher``, as an operator would)."""
    plugin_dir.mkdir(parents=True, exist_ok=True)
    path = plugin_dir / "terway"
    proc = subprocess.run([sys.executable, "-m", "terway.cni.launcher", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeSetupError(f"installing the plugin failed: {proc.stderr.strip()}")
    return path


def busybox_applets() -> list[str]:
    out = run(str(BUSYBOX), "--list").stdout
    return sorted({a.strip() for a in out.split() if a.strip() and a.strip() != "busybox"})


def rootfs_tar() -> bytes:
    """A rootfs with /bin/busybox and one symlink per applet (sh, ip, ping, sleep, …)."""
    if not BUSYBOX.exists():
        raise RuntimeSetupError(f"{BUSYBOX} missing (apt-get install busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "run", "var", "root"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in busybox_applets():
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def rootfs_file() -> Path:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = WORK_DIR / "terway-busybox-rootfs.tar"
    data = rootfs_tar()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def podman_has_image(image: str = IMAGE) -> bool:
    return run("podman", "image", "exists", image, check=False).returncode == 0


def ensure_podman() -> None:
    """Packages, containers.conf (CNI backend + our plugin dir), the busybox image."""
    ensure_packages()
    install_plugin()
    if write_if_changed(CONTAINERS_CONF, containers_conf_text()):
        log(f"wrote {CONTAINERS_CONF}")
    CNI_CONF_DIR.mkdir(parents=True, exist_ok=True)
    if not podman_has_image():
        run("podman", "import", "--change", "CMD=/bin/sh", str(rootfs_file()), IMAGE)
        log(f"imported {IMAGE} into podman")


# -- docker -----------------------------------------------------------------------------------

@dataclass
class Dockerd:
    """The docker engine for this session; ``started`` when we launched it (so we stop it)."""

    started: bool
    pid: int | None = None

    def stop(self) -> None:
        if self.started and self.pid is not None:
            stop_dockerd(self.pid)


def docker_answers(timeout: float = 2.0) -> bool:
    if not DOCKER_SOCK.exists():
        return False
    try:
        import docker

        client = docker.DockerClient(base_url=f"unix://{DOCKER_SOCK}", timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:   # any failure means "not answering yet"
        return False


def start_dockerd(timeout: float = 60.0) -> Dockerd:
    """Use a running engine, else launch ``dockerd`` in the background and wait for its socket."""
    if docker_answers():
        return Dockerd(started=False)
    if shutil.which("dockerd") is None:
        raise RuntimeSetupError("dockerd not installed (apt-get install docker.io)")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as out:
        proc = subprocess.Popen(["dockerd", *DOCKERD_ARGS], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    DOCKERD_PIDFILE.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeSetupError(f"dockerd exited {proc.returncode}; see {DOCKERD_LOG}:\n"
                                    + _tail(DOCKERD_LOG))
        if docker_answers():
            log(f"dockerd up (pid {proc.pid})")
            return Dockerd(started=True, pid=proc.pid)
        time.sleep(0.5)
    stop_dockerd(proc.pid)
    raise RuntimeSetupError(f"dockerd not answering on {DOCKER_SOCK} after {timeout}s:\n"
                            + _tail(DOCKERD_LOG))


def stop_dockerd(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the dockerd we started (it stops its managed containerd), then wait."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    with contextlib.suppress(FileNotFoundError):
        DOCKERD_PIDFILE.unlink()


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def ensure_docker_image() -> None:
    import docker

    client = docker.DockerClient(base_url=f"unix://{DOCKER_SOCK}")
    try:
        try:
            client.images.get(IMAGE)
            return
        except docker.errors.ImageNotFound:
            pass
        repo, tag = IMAGE.rsplit(":", 1)
        client.api.import_image_from_file(str(rootfs_file()), repository=repo, tag=tag,
                                          changes=["CMD /bin/sh"])
        client.images.get(IMAGE)   # raises when the import did not land
        log(f"imported {IMAGE} into docker")
    finally:
        client.close()


def ensure_docker() -> Dockerd:
    """Packages, a running engine (started here if none), the busybox image."""
    ensure_packages()
    engine = start_dockerd()
    try:
        ensure_docker_image()
    except Exception:
        engine.stop()
        raise
    return engine


# -- CLI --------------------------------------------------------------------------------------

def status() -> dict[str, object]:
    return {
        "missing_packages": missing_packages(),
        "containers_conf": CONTAINERS_CONF.exists()
        and CONTAINERS_CONF.read_text() == containers_conf_text(),
        "plugin": (PLUGIN_DIR / "terway").exists(),
        "podman_image": shutil.which("podman") is not None and podman_has_image(),
        "dockerd_answers": docker_answers(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runtime_setup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser("install", help="packages, podman config + image, docker image")
    inst.add_argument("--no-docker-image", action="store_true",
                      help="do not start dockerd to import the image (tests do it later)")
    sub.add_parser("status", help="what is ready")
    sub.add_parser("stop-dockerd", help="stop a dockerd this helper started (pid file)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "install":
            ensure_podman()
            if not args.no_docker_image:
                ensure_docker().stop()   # leave the engine as we found it
            log("runtimes ready")
        elif args.cmd == "status":
            for key, value in status().items():
                print(f"{key}: {value}")
        elif args.cmd == "stop-dockerd" and DOCKERD_PIDFILE.exists():
            stop_dockerd(int(DOCKERD_PIDFILE.read_text()))
    except RuntimeSetupError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
