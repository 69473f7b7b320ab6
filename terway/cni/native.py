"""The native plugin front (``shim.c``): compiled once, cached, copied into a CNI bin dir.

Why: see shim.c. It is built from source with the system C compiler (``cc``, ``-Wall -Wextra
-Werror``), statically linked when the C library allows (no loader work per pod; it also runs on
nodes whose libc or Python differ from the image's). The DaemonSet image builds it at image
build time (``python -m terway.cni.native``); without a compiler and without a cached binary the
plugin is the Python launcher alone (``native_plugin`` returns None and callers say so).

Where the binary is kept, and why it can be trusted: it is copied into the CNI bin dir and run
as root for every pod, so it is only ever taken from, or built in, a directory that no other
user can write to. A cached binary is used only when it and its directory are owned by this user
(or root), are not symlinks, and are not group- or world-writable; anything else is ignored and
the binary is built again. In order:

1. ``terway/cni/_native/terway-<hash of shim.c>`` in the package (where the image build puts it);
2. when the package tree cannot be written (a read-only install): a per-user cache,
   ``<tempdir>/terway-native-<euid>``, created 0700 and used only while it still is private
   (no group or world permissions, ours);
3. when that directory is not ours or not private (someone made it first), a fresh private
   directory (``mkdtemp``, 0700) for this one build.

A predictable shared path (the old ``<tempdir>/terway-native/<name>``, reused when present) is
never looked at: anyone could have planted a binary there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

SOURCE = Path(__file__).with_name("shim.c")
CACHE = Path(__file__).with_name("_native")
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror")


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
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
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


def _owned_without(path: Path, kind: int, forbidden: int) -> bool:
    """``path`` itself (not a symlink) is of ``kind``, owned by us or root, and has none of
    the ``forbidden`` mode bits."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_IFMT(st.st_mode) == kind and st.st_uid in (os.geteuid(), 0)
            and not st.st_mode & forbidden)


def trusted_dir(directory: Path, private: bool = False) -> bool:
    """No other user can add or replace files in ``directory`` (``private``: nor look)."""
    return _owned_without(directory, stat.S_IFDIR, 0o077 if private else 0o022)


def trusted_binary(path: Path, private: bool = False) -> bool:
    """``path`` is an executable no other user could have written, in such a directory."""
    return (trusted_dir(path.parent, private)
            and _owned_without(path, stat.S_IFREG, 0o022)
            and os.access(path, os.X_OK))


def user_cache() -> Path:
    """The per-user cache for a read-only package tree (see the module docstring)."""
    return Path(tempfile.gettempdir()) / f"terway-native-{os.geteuid()}"


def _build_in(directory: Path, name: str, cc: str, private: bool) -> Path | None:
    """Build into ``directory`` when it is (or can be made) a trusted one; None when it cannot
    be written or is not trusted. A compiler error is raised."""
    path = directory / name
    try:
        if private:
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)
        if directory.exists() and not trusted_dir(directory, private):
            return None
        build(path, cc)
    except OSError:  # a read-only package tree (EROFS, EACCES), or no such parent
        return None
    return path if trusted_binary(path, private) else None


def _places() -> Iterator[tuple[Path, bool]]:
    """(directory, must be private) to look in, in order. The per-user cache only when there
    is a temporary directory at all: the DaemonSet's install-cni has a read-only root and no
    /tmp, and finds the image's package cache first."""
    yield CACHE, False
    try:
        yield user_cache(), True
    except OSError:  # tempfile: "No usable temporary directory found"
        return


def native_plugin() -> Path | None:
    """The compiled front for the current source: cached, or built now; None without a
    compiler (the caller installs the Python plugin alone)."""
    name = cached_path().name
    for directory, private in _places():
        if trusted_binary(directory / name, private):
            return directory / name
    cc = compiler()
    if cc is None:
        return None
    for directory, private in _places():
        path = _build_in(directory, name, cc, private)
        if path is not None:
            return path
    fresh = Path(tempfile.mkdtemp(prefix="terway-native-"))  # 0700 and new: nobody else's
    build(fresh / name, cc)
    return fresh / name


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
