"""The native plugin front (``shim.c``): compiled once, cached, copied into a CNI bin dir.

Why: see shim.c. It is built from source with the system C compiler (``cc``), statically
linked when the C library allows (no loader work per pod; it also runs on nodes whose libc or
Python differ from the image's). The binary is cached under ``terway/cni/_native/`` named by
the source's hash (the DaemonSet image builds it at image build time: ``python -m
terway.cni.native``); without a compiler and without a cached binary the plugin is the Python
launcher alone (``native_plugin`` returns None and callers say so).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("shim.c")
CACHE = Path(__file__).with_name("_native")
CFLAGS = ("-O2", "-Wall")


class NativeBuildError(RuntimeError):
    """The compiler refused the source (its output is the message)."""


def cached_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return CACHE / f"terway-{digest}"


def compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def build(dest: Path, cc: str) -> None:
    """Compile shim.c to ``dest`` (atomically): static if possible, else dynamic."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        errors = ""
        for link in (["-static"], []):
            proc = subprocess.run([cc, *CFLAGS, *link, "-o", tmp, str(SOURCE)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                os.chmod(tmp, 0o755)
                os.replace(tmp, dest)
                return
            errors = proc.stderr.strip()
        raise NativeBuildError(f"{cc} could not build {SOURCE.name}: {errors}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def native_plugin() -> Path | None:
    """The compiled front for the current source: cached, or built now; None without a
    compiler (the caller installs the Python plugin alone)."""
    path = cached_path()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    cc = compiler()
    if cc is None:
        return None
    try:
        build(path, cc)
    except PermissionError:  # a read-only package tree: build where we may
        path = Path(tempfile.gettempdir()) / "terway-native" / path.name
        if not path.is_file():
            build(path, cc)
    return path


def main() -> int:
    """``python -m terway.cni.native``: build (or find) the front, print its path."""
    try:
        path = native_plugin()
    except NativeBuildError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if path is None:
        sys.stderr.write("no C compiler (cc) found: the plugin will be the Python launcher\n")
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
