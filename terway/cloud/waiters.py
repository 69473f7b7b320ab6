"""Wait for an ENI to reach a status: Attach and Detach are asynchronous in ECS.

Polls DescribeNetworkInterfaces with a backoff; sans-IO like ``retry`` (sleep, clock and
randomness injected) so the simulator can drive it in simpy time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from terway.cloud.api import CloudAPI, Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.retry import Backoff

# Upstream polls from 5 s (WAIT_ENI_STATUS); attaching takes ~1-3 s, so we start sooner.
WAIT_ENI_STATUS_FAST = Backoff(0.5, 1.5, 10, jitter=0.2)
WAIT_TIMEOUT = "Terway.WaitEniStatusTimeout"


def wait_eni_status(
    cloud: CloudAPI,
    eni_id: str,
    want: str,
    *,
    policy: Backoff = WAIT_ENI_STATUS_FAST,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Eni:
    """The ENI once its status is ``want``; NOT_FOUND if it vanished; TRANSIENT on timeout."""
    pauses = policy.delays(rng if rng is not None else random.Random(0))
    last = ""
    for attempt in range(policy.steps):
        found = cloud.describe_network_interfaces(eni_ids=[eni_id])
        if not found:
            raise CloudError("InvalidEniId.NotFound", f"ENI {eni_id} no longer exists",
                             error_class=ErrorClass.NOT_FOUND)
        last = found[0].status
        if last == want:
            return found[0]
        if attempt < len(pauses):
            sleep(pauses[attempt])
    raise CloudError(WAIT_TIMEOUT, f"ENI {eni_id} still {last!r} after {policy.steps} checks, "
                     f"want {want!r}", error_class=ErrorClass.TRANSIENT)
