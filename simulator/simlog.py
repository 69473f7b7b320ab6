"""The simulated daemons' log: upstream's logrus text format, one file for the whole cluster.

Each line is ``time="…" level=… msg="…" node=…`` (the daemon's own quoting), stamped with the
simulated time from a fixed epoch (the seed's day). Lines are buffered and written once; past
``max_lines`` they are only counted, so a 24 h run cannot fill the disk.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TextIO

from terway.daemon.logfmt import quote

EPOCH = 1584428400.0          # 2020-03-17T07:00:00Z, the day of the seed's log line
_KEYS = ("IpNotEnough", "QuotaExceeded", "Throttling", "EniPerInstanceLimitExceeded")
KEYS = _KEYS          # the cloud refusals counted per line (the report marks them)


class SimLog:
    def __init__(self, max_lines: int = 200_000) -> None:
        self.max_lines = max_lines
        self.lines: list[str] = []
        self.dropped = 0
        self.counts: Counter[str] = Counter()
        self.first: dict[str, float] = {}       # key → simulated time of its first line

    def write(self, now: float, level: str, msg: str, node: str) -> None:
        counts = self.counts
        counts[level] += 1
        for key in _KEYS:
            if key in msg:
                counts[key] += 1
                if key not in self.first:
                    self.first[key] = now
        if len(self.lines) >= self.max_lines:
            self.dropped += 1
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + now))
        self.lines.append(f'time="{stamp}" level={level} msg={quote(msg)} node={node}')

    def dump(self, fh: TextIO) -> None:
        for line in self.lines:
            fh.write(line)
            fh.write("\n")
        if self.dropped:
            fh.write(f'level=info msg="log truncated: {self.dropped} more lines not written"\n')
