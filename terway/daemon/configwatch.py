"""Config reload without restart: poll the config files' stat and feed ``on_config_changed``.

Kubernetes updates a mounted ConfigMap by swapping a ``..data`` symlink, so the signature is the
stat *through* the symlink (inode, size, mtime). A config that fails validation is logged with
every problem and ignored: the daemon keeps running on the last good one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from terway.config import ConfigError
from terway.daemon import logfmt
from terway.daemon.clock import Clock
from terway.daemon.node import LoadedConfig

log = logfmt.get("config")
Signature = tuple[tuple[str, int, int, int] | None, ...]


def signature(files: Sequence[str]) -> Signature:
    out: list[tuple[str, int, int, int] | None] = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            out.append(None)
            continue
        out.append((f, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class ConfigWatcher:
    def __init__(self, files: Sequence[str], load: Callable[[], LoadedConfig],
                 apply: Callable[[LoadedConfig], None]) -> None:
        self.files = tuple(files)
        self._load = load
        self._apply = apply
        self._sig = signature(self.files)

    def check(self) -> bool:
        """Reload if a file changed; True when a new config was applied."""
        sig = signature(self.files)
        if sig == self._sig:
            return False
        self._sig = sig
        try:
            conf = self._load()
        except ConfigError as exc:
            log.warning("config changed but is invalid; keeping the previous one",
                        extra=logfmt.fields(problems="; ".join(exc.problems)))
            return False
        self._apply(conf)
        log.info("config reloaded", extra=logfmt.fields(source=conf.source))
        return True

    async def run(self, clock: Clock, period: float) -> None:
        while True:
            await clock.sleep(period)
            try:
                self.check()
            except Exception:
                log.error("config reload failed", exc_info=True)
