"""``terwayd install-cni``: the DaemonSet's init container step.

Installs the ``terway`` plugin into the CNI bin dir as a self-contained bundle (the native front,
and standard-library modules + a launcher run by the node's own ``python3`` as its fallback; see
``terway.cni.launcher.write_bundle``), or copies ``--plugin`` as is, and writes
``10-terway.conflist`` from the ConfigMap's ``10-terway.conf`` (atomically: temp file + rename,
so a runtime never reads half a file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terway import cliargs
from terway.cni.launcher import write_bundle

CONFLIST_NAME = "10-terway.conflist"


def conflist(cni_conf: dict[str, Any]) -> dict[str, Any]:
    """Wrap a single-plugin 10-terway.conf into a conflist (name/cniVersion hoisted)."""
    plugin = dict(cni_conf)
    name = str(plugin.pop("name", "terway"))
    version = str(plugin.pop("cniVersion", "0.3.1"))
    plugin.setdefault("type", "terway")
    return {"cniVersion": version, "name": name, "plugins": [plugin]}


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="terwayd install-cni",
                                description="install the CNI plugin and its conflist on the node")
    p.add_argument("--bin-dir", default="/opt/cni/bin", metavar="DIR",
                   help="where the plugin executable goes")
    p.add_argument("--conf-dir", default="/etc/cni/net.d", metavar="DIR",
                   help="where the conflist goes")
    p.add_argument("--configmap-dir", default="/etc/eni", metavar="DIR",
                   help="the mounted eni-config ConfigMap (its 10-terway.conf is installed)")
    p.add_argument("--plugin", default="", metavar="FILE",
                   help="copy this executable as the plugin instead of installing the bundle "
                        "(default: the bundle)")
    p.add_argument("--host-python", default="/usr/bin/python3", metavar="PATH",
                   help="the node's Python 3.11+ that runs the bundled plugin")
    p.add_argument("--no-native", action="store_true",
                   help="install the Python plugin alone, without its native front")
    return cliargs.finish(p)


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    src = Path(args.configmap_dir) / "10-terway.conf"
    try:
        cni = json.loads(src.read_text())
    except (OSError, ValueError) as exc:
        print(f"terwayd install-cni: 10-terway.conf: cannot read {src}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(cni, dict):
        print("terwayd install-cni: 10-terway.conf: must be a JSON object", file=sys.stderr)
        return 2
    bin_dir, conf_dir = Path(args.bin_dir), Path(args.conf_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    conf_dir.mkdir(parents=True, exist_ok=True)
    kind = "as given"
    if args.plugin:
        _atomic_write(bin_dir / "terway", Path(args.plugin).read_bytes(), 0o755)
    elif write_bundle(str(bin_dir), python=args.host_python, native=not args.no_native):
        kind = "native front, Python fallback terway-python"
    else:
        kind = "Python plugin only" + ("" if args.no_native else " (no C compiler found)")
    _atomic_write(conf_dir / CONFLIST_NAME,
                  (json.dumps(conflist(cni), indent=2) + "\n").encode(), 0o644)
    print(f"installed {bin_dir / 'terway'} ({kind}) and {conf_dir / CONFLIST_NAME}")
    return 0
