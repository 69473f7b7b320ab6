"""Run part of the test suite inside a qemu guest whose kernel has what this host's lacks (ipvlan).

The guest is Debian's ``linux-image-amd64`` kernel with a tiny initramfs: static busybox, the
kernel modules the tests need (resolved through ``modules.dep``) and an ``/init`` that mounts the
host's root filesystem read-only over 9p, puts a tmpfs overlay on top (so ``ip netns``, /tmp and
pytest can write), chroots into it and runs pytest with the host's own Python. The result comes
back on the serial console as one marker line with a per-run nonce.

Run by hand: ``python3 tests/vm/guest.py [pytest args…]`` (see docs/vm.md).
"""

from __future__ import annotations

import argparse
import gzip
import io
import lzma
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
# Modules the guest loads (dependencies are added from modules.dep); missing ones are skipped.
MODULES = (
    "virtio_pci", "9pnet_virtio", "9p", "overlay",
    "ipvlan", "veth", "dummy", "bridge",
    "sch_tbf", "sch_htb", "sch_ingress", "cls_u32", "cls_matchall", "act_mirred", "ifb",
)
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TESTS = ("tests/datapath/test_ipvlan.py", "tests/vm/test_ipvlan_guest.py")
VIRTFS_OPTS = "security_model=none,readonly=on,multidevs=remap"
RESULT_RE = r"TERWAY-VM-RESULT {nonce} rc=(\d+)"


class VmError(Exception):
    """The guest could not be built, booted, or did not report a result."""


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel image and the module tree that belongs to it."""

    version: str
    image: Path
    modules: Path


@dataclass
class GuestResult:
    """What came back from the guest: pytest's exit code (None = no marker) and the console."""

    rc: int | None
    console: str
    seconds: float
    kernel: str
    accel: str
    timed_out: bool = False
    stages: list[str] = field(default_factory=list)

    def pytest_summary(self) -> str:
        """The last pytest line printed in the guest ("N passed in Xs" and friends)."""
        words = re.compile(r"\b(passed|failed|errors?|skipped|no tests ran)\b")
        lines = [ln for ln in self.console.splitlines() if words.search(ln)]
        return lines[-1].strip(" =") if lines else ""


# ---------------------------------------------------------------- discovery


def find_kernel(boot: Path = Path("/boot"), modroot: Path = Path("/lib/modules")) -> Kernel | None:
    """The newest /boot/vmlinuz-* whose modules include ipvlan (None when there is none)."""
    found: list[Kernel] = []
    for image in boot.glob("vmlinuz-*"):
        version = image.name.removeprefix("vmlinuz-")
        mods = modroot / version
        if (mods / "modules.dep").is_file() and "ipvlan.ko" in (mods / "modules.dep").read_text():
            found.append(Kernel(version, image, mods))
    found.sort(key=lambda k: [int(p) if p.isdigit() else 0 for p in re.split(r"[.-]", k.version)])
    return found[-1] if found else None


def find_busybox() -> Path | None:
    """A statically linked busybox (Debian's busybox-static), or None."""
    for cand in BUSYBOX_CANDIDATES:
        path = Path(cand)
        if path.is_file() and b"ld-linux" not in path.read_bytes()[:65536]:
            return path
    return None


def find_qemu() -> str | None:
    return shutil.which("qemu-system-x86_64")


def missing_tools() -> list[str]:
    """What this machine lacks to boot the guest (scripts/vm/install.sh installs it)."""
    missing = []
    if find_qemu() is None:
        missing.append("qemu-system-x86_64 (qemu-system-x86)")
    if find_kernel() is None:
        missing.append("/boot/vmlinuz-* with the ipvlan module (linux-image-amd64)")
    if find_busybox() is None:
        missing.append("static busybox (busybox-static)")
    return missing


def kvm_usable() -> bool:
    """KVM only when /dev/kvm is usable and the CPU advertises vmx/svm: on a nested VM without
    them (this dev machine) /dev/kvm exists but a KVM guest crawls. TERWAY_VM_ACCEL=kvm|tcg
    overrides the guess."""
    forced = os.environ.get("TERWAY_VM_ACCEL", "")
    if forced in ("kvm", "tcg"):
        return forced == "kvm"
    if not (os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M) is not None


# ---------------------------------------------------------------- modules


def parse_modules_dep(text: str) -> dict[str, tuple[str, list[str]]]:
    """modules.dep → {module name: (relative path, [relative paths of its deps])}."""
    table: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, deps = line.split(":", 1)
        table[module_name(path)] = (path, deps.split())
    return table


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    base = re.sub(r"\.ko(\.(xz|gz|zst))?$", "", base)
    return base.replace("-", "_")


def load_order(wanted: Iterable[str], dep_text: str) -> list[str]:
    """Relative module paths in an order insmod accepts (deps first); unknown names are skipped
    (built into the kernel, or absent from this build)."""
    table = parse_modules_dep(dep_text)
    by_path = {path: deps for path, deps in table.values()}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        # modules.dep lists all transitive deps; visiting them first keeps insmod happy.
        for dep in reversed(by_path.get(path, [])):
            visit(dep)
        order.append(path)

    for name in wanted:
        entry = table.get(name.replace("-", "_"))
        if entry is not None:
            visit(entry[0])
    return order


def module_bytes(path: Path) -> bytes:
    """A module's ELF image; compressed modules are unpacked (busybox insmod wants plain .ko)."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        raise VmError(f"{path}: zstd-compressed modules are not supported by the guest builder")
    return data


# ---------------------------------------------------------------- initramfs


class Cpio:
    """A newc ("070701") archive writer, enough for an initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0)) -> None:
        raw = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        self.buf.write(b"070701" + b"".join(b"%08x" % f for f in fields) + raw)
        self._pad()
        self.buf.write(data)
        self._pad()
        self.ino += 1

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def mkdir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self.dirs:
                self.dirs.add(sub)
                self._entry(sub, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        self.mkdir(name.rsplit("/", 1)[0]) if "/" in name else None
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name.strip("/"), 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def init_script(nonce: str, command: Sequence[str], workdir: str) -> str:
    """The guest's /init (busybox sh). Every failure still prints the result marker (rc ≥ 200)
    so the host never has to wait for its timeout to learn what went wrong."""
    cmd = " ".join(shlex.quote(c) for c in command)
    marker = f"TERWAY-VM-RESULT {nonce} rc="
    return f"""#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev /host /rw /newroot
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
stage() {{ echo "TERWAY-VM-STAGE $*"; }}
off() {{ sync; poweroff -f; echo o > /proc/sysrq-trigger; }}
die() {{ echo "TERWAY-VM-ERROR $1"; echo "{marker}$2"; off; }}
stage kernel $(uname -r)
for m in $(cat /modules.order); do
    insmod /lib/modules/$m || echo "TERWAY-VM-WARN insmod $m failed"
done
stage modules loaded
ok=
for i in 1 2 3 4 5 6 7 8 9 10; do
    if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host; then
        ok=1; break
    fi
    sleep 1
done
[ -n "$ok" ] || die "9p mount of the host root failed" 201
mount -t tmpfs -o size=512m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot \\
    || die "overlay mount failed" 202
for d in proc sys dev; do mount --move /$d /newroot/$d || die "move /$d failed" 203; done
# /run gets a fresh tmpfs (the host's netns files must not show up); /tmp stays the overlay's,
# so a checkout under /tmp remains visible.
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/run/netns /newroot/run/lock
stage root ready
chroot /newroot /usr/bin/env -i PATH={GUEST_PATH} HOME=/root LANG=C.UTF-8 TERWAY_IN_VM=1 \\
    TERWAY_REQUIRE_PRIVILEGED=1 PYTHONDONTWRITEBYTECODE=1 \\
    /bin/sh -c 'cd {shlex.quote(workdir)} && ip -V && exec {cmd}'
rc=$?
echo "{marker}$rc"
off
"""


def build_initramfs(kernel: Kernel, busybox: Path, nonce: str, command: Sequence[str],
                    workdir: str, modules: Iterable[str] = MODULES) -> bytes:
    """A gzip'd newc cpio: busybox, the modules in load order, /init."""
    archive = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "host", "rw", "newroot", "lib/modules"):
        archive.mkdir(d)
    archive.chardev("dev/console", 5, 1)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    order = load_order(modules, (kernel.modules / "modules.dep").read_text())
    names = []
    for rel in order:
        name = module_name(rel) + ".ko"
        archive.file(f"lib/modules/{name}", module_bytes(kernel.modules / rel))
        names.append(name)
    archive.file("modules.order", ("\n".join(names) + "\n").encode())
    archive.file("init", init_script(nonce, command, workdir).encode(), 0o755)
    return gzip.compress(archive.finish(), compresslevel=1)


# ---------------------------------------------------------------- boot


def qemu_command(qemu: str, kernel: Kernel, initrd: Path, kvm: bool,
                 memory_mb: int = 1024) -> list[str]:
    """Serial console on stdout, host root shared read-only as 9p tag ``hostroot``, no NIC."""
    accel = ["-enable-kvm", "-cpu", "host"] if kvm else ["-cpu", "max"]
    return [
        qemu, "-m", str(memory_mb), "-smp", "1", "-nographic", "-no-reboot", *accel,
        "-kernel", str(kernel.image), "-initrd", str(initrd),
        "-append", "console=ttyS0 panic=-1 quiet",
        "-virtfs", f"local,path=/,mount_tag=hostroot,{VIRTFS_OPTS}",
        "-nic", "none",
    ]


def guest_pytest(tests: Sequence[str]) -> list[str]:
    """The host's own interpreter (same path inside the chroot) runs pytest in the guest."""
    return [sys.executable, "-m", "pytest", "-q", "-ra", "--color=no", "-p", "no:cacheprovider",
            *tests]


def _pump(stream: Iterable[bytes], sink: list[str], echo: bool) -> None:
    for raw in stream:
        line = raw.decode(errors="replace").rstrip("\r\n")
        sink.append(line)
        if echo:
            print(line, flush=True)


def boot(tests: Sequence[str] = DEFAULT_TESTS, timeout: float = 600.0, echo: bool = False,
         log: Path | None = None, kvm: bool | None = None) -> GuestResult:
    """Build the guest, boot it, wait for its marker (or the timeout), return what it said."""
    qemu, kernel, busybox = find_qemu(), find_kernel(), find_busybox()
    if qemu is None or kernel is None or busybox is None:
        raise VmError("cannot boot the guest, missing: " + ", ".join(missing_tools()))
    use_kvm = kvm_usable() if kvm is None else kvm
    nonce = secrets.token_hex(6)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="terway-vm-") as tmp:
        initrd = Path(tmp) / "initrd.gz"
        initrd.write_bytes(build_initramfs(kernel, busybox, nonce, guest_pytest(tests), str(REPO)))
        lines, timed_out = _run_qemu(qemu_command(qemu, kernel, initrd, use_kvm), timeout, echo)
    console = "\n".join(lines)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(console + "\n")
    match = re.search(RESULT_RE.format(nonce=nonce), console)
    return GuestResult(
        rc=int(match.group(1)) if match else None,
        console=console,
        seconds=time.monotonic() - start,
        kernel=kernel.version,
        accel="kvm" if use_kvm else "tcg",
        timed_out=timed_out,
        stages=[ln for ln in lines if ln.startswith(("TERWAY-VM-STAGE", "TERWAY-VM-ERROR"))],
    )


def _run_qemu(cmd: list[str], timeout: float, echo: bool) -> tuple[list[str], bool]:
    lines: list[str] = []
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines, echo), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    reader.join(timeout=10)
    return lines, timed_out


def iter_failures(result: GuestResult) -> Iterator[str]:
    """Human-readable reasons the guest run did not pass (empty = it passed)."""
    if result.timed_out:
        yield "guest timed out"
    for ln in result.stages:
        if ln.startswith("TERWAY-VM-ERROR"):
            yield ln
    if result.rc is None:
        yield "no result marker on the console"
    elif result.rc != 0:
        yield f"guest pytest exit code {result.rc}"


# ---------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("tests", nargs="*", default=list(DEFAULT_TESTS),
                        help="pytest arguments for the guest (paths relative to the repo)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--log", type=Path, default=REPO / "out" / "vm" / "console.log")
    parser.add_argument("--no-kvm", action="store_true", help="force software emulation")
    args = parser.parse_args(argv)
    result = boot(args.tests, args.timeout, echo=True, log=args.log,
                  kvm=False if args.no_kvm else None)
    problems = list(iter_failures(result))
    print(f"vm: kernel {result.kernel}, {result.accel}, {result.seconds:.1f}s, "
          f"guest rc={result.rc}, summary: {result.pytest_summary() or '-'}")
    for p in problems:
        print(f"vm: {p}", file=sys.stderr)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
