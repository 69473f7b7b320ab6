"""Build the Go programs under tests/go/ once and reuse them: a cache outside the repository.

``go_binary(Path("tests/go/aliyunclient"))`` returns the path of the built program. The cache
key is the Go version plus the module's go.mod, go.sum and *.go files, so a changed pin or
source builds anew and anything else reuses the earlier build (the Go SDK takes ~35 s to build
on 2 CPUs). The cache lives in ``$TERWAY_GO_CACHE``, else ``/var/cache/terway-py/go`` when that
can be written (root, CI), else ``~/.cache/terway-py/go``; each build is written beside its final
name and renamed into place under a lock, so concurrent test processes neither rebuild nor see
half a file.

Without ``go`` on PATH the calling test is skipped, except when ``TERWAY_REQUIRE_PRIVILEGED=1``
(CI), where it fails: a green CI must mean the Go client really ran.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEM_CACHE = Path("/var/cache/terway-py/go")
BUILD_TIMEOUT_S = 1200  # first build downloads the modules and compiles the SDK: minutes


def go_or_skip() -> str:
    """The ``go`` executable; skips the test without it (fails when CI requires it)."""
    go = shutil.which("go")
    if go is None:
        why = "needs the Go toolchain (`go` on PATH) to build tests/go/ programs"
        if os.environ.get("TERWAY_REQUIRE_PRIVILEGED") == "1":
            pytest.fail(f"TERWAY_REQUIRE_PRIVILEGED=1 but {why}")
        pytest.skip(why)
    return go


def cache_root() -> Path:
    """Where built programs are kept (see the module docstring)."""
    env = os.environ.get("TERWAY_GO_CACHE")
    if env:
        return Path(env)
    try:
        SYSTEM_CACHE.mkdir(parents=True, exist_ok=True)
        if os.access(SYSTEM_CACHE, os.W_OK):
            return SYSTEM_CACHE
    except OSError:
        pass
    return Path.home() / ".cache" / "terway-py" / "go"


def cache_key(module: Path, go: str) -> str:
    """16 hex digits over ``go version``, go.mod, go.sum and the module's Go sources."""
    digest = hashlib.sha256()
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True)
    digest.update(version.stdout.encode())
    files = [module / "go.mod", module / "go.sum", *sorted(module.rglob("*.go"))]
    for path in files:
        digest.update(str(path.relative_to(module)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def go_binary(module: Path) -> Path:
    """Build (or reuse) the program of the Go module in ``module``; returns its path."""
    go = go_or_skip()
    module = module.resolve()
    out_dir = cache_root() / module.name / cache_key(module, go)
    binary = out_dir / module.name
    if binary.is_file():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same key
        if binary.is_file():
            return binary
        partial = out_dir / f".{module.name}.{os.getpid()}"
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false -mod=readonly"}
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."], cwd=module, env=env,
            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise AssertionError(f"go build in {module} failed:\n{result.stderr[-4000:]}")
        partial.rename(binary)
    return binary
