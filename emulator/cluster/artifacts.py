"""What the cluster runs that is built, not committed: the upstream binaries
(``scripts/kube/build.sh``) and the images (``scripts/kube/images.sh``), both cached outside the
repository keyed by their pins/inputs and reused when unchanged."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .procs import ClusterError

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Artifacts:
    bin_dir: Path          # kube-apiserver, kubelet, kubectl … (symlinks to kube), etcd, helm
    images_dir: Path       # images.json + docker-archive tars

    def images(self) -> dict[str, dict[str, object]]:
        return dict(json.loads((self.images_dir / "images.json").read_text()))

    def archives(self) -> list[Path]:
        return [Path(str(i["archive"])) for i in self.images().values()]

    def ref(self, name: str) -> str:
        return str(self.images()[name]["ref"])


def _run_script(name: str, env_override: str) -> Path:
    """A build script's output directory: ``$env_override`` if set, else run the script (it
    reuses its cache) and take the last line it prints."""
    if os.environ.get(env_override):
        return Path(os.environ[env_override])
    script = ROOT / "scripts" / "kube" / name
    proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=None, text=True,
                          check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ClusterError(f"{script} failed with code {proc.returncode} (its output is above)")
    return Path(lines[-1])


def build_artifacts() -> Artifacts:
    return Artifacts(_run_script("build.sh", "TERWAY_KUBE_BIN"),
                     _run_script("images.sh", "TERWAY_KUBE_IMAGES"))
