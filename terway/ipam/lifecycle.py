"""An ENI's life in the pool, in one table: (state, event) -> new state.

As h11 keeps its protocol state machine in one table, the pool never assigns ``EniSlot.state``
itself: it names what happened and ``transition`` looks the new state up here. An event the table
does not allow from the current state is a bug in the core, raised at once (``IllegalTransition``)
instead of silently skewing the pool's counts. An ENI enters the pool ATTACHING (created) or
READY (found at a restart) and leaves it when forgotten (deleted, or gone from the cloud).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from terway.ipam.commands import AttachEni, Command, DeleteEni, DetachEni
from terway.ipam.model import EniSlot, EniState


class EniEvent(enum.Enum):
    ATTACHED = "attached"              # AttachEni succeeded
    ATTACH_REFUSED = "attach refused"  # AttachEni failed for good: give the half-made ENI back
    RELEASED = "released"              # the pool gives a whole idle ENI back
    DETACHED = "detached"              # DetachEni succeeded, or the cloud says it is detached


TRANSITIONS: Mapping[tuple[EniState, EniEvent], EniState] = {
    (EniState.ATTACHING, EniEvent.ATTACHED): EniState.READY,
    (EniState.ATTACHING, EniEvent.ATTACH_REFUSED): EniState.DETACHING,
    (EniState.READY, EniEvent.RELEASED): EniState.DETACHING,
    (EniState.DETACHING, EniEvent.DETACHED): EniState.DELETING,
}


class IllegalTransition(RuntimeError):
    """An event the ENI's current state does not allow: the core's bookkeeping is wrong."""

    def __init__(self, eni_id: str, state: EniState, event: EniEvent) -> None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        super().__init__(f"ENI {eni_id}: event {event.value!r} is illegal in state "
                         f"{state.value!r} (allowed: {', '.join(allowed) or 'none'})")
        self.eni_id, self.state, self.event = eni_id, state, event


def transition(eni: EniSlot, event: EniEvent) -> EniState:
    """Move ``eni`` on by ``event``; return its new state. Raises IllegalTransition."""
    new = TRANSITIONS.get((eni.state, event))
    if new is None:
        raise IllegalTransition(eni.eni_id, eni.state, event)
    eni.state = new
    return new


def next_step(eni: EniSlot, cmd_id: str, instance_id: str) -> Command | None:
    """The cloud call an ENI between states waits for (None: READY, nothing to do)."""
    match eni.state:
        case EniState.ATTACHING:
            return AttachEni(cmd_id, eni.eni_id, instance_id)
        case EniState.DETACHING:
            return DetachEni(cmd_id, eni.eni_id, instance_id)
        case EniState.DELETING:
            return DeleteEni(cmd_id, eni.eni_id)
    return None
