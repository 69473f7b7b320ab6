"""The ENI transition table (terway/ipam/lifecycle.py): every legal move, and a refusal."""

from __future__ import annotations

import pytest

from terway.ipam.commands import AttachEni, DeleteEni, DetachEni
from terway.ipam.lifecycle import (
    TRANSITIONS,
    EniEvent,
    IllegalTransition,
    next_step,
    transition,
)
from terway.ipam.model import EniSlot, EniState, PoolCounts

LEGAL = [
    (EniState.ATTACHING, EniEvent.ATTACHED, EniState.READY),
    (EniState.ATTACHING, EniEvent.ATTACH_REFUSED, EniState.DETACHING),
    (EniState.READY, EniEvent.RELEASED, EniState.DETACHING),
    (EniState.DETACHING, EniEvent.DETACHED, EniState.DELETING),
]


def _eni(state: EniState) -> EniSlot:
    return EniSlot("eni-1", "00:16:3e:00:00:01", "vsw-a", "10.0.0.2", state)


def test_the_table_is_exactly_the_legal_moves() -> None:
    assert dict(TRANSITIONS) == {(s, e): new for s, e, new in LEGAL}


@pytest.mark.parametrize(("state", "event", "new"), LEGAL)
def test_every_legal_transition(state: EniState, event: EniEvent, new: EniState) -> None:
    eni = _eni(state)
    assert transition(eni, event) is new
    assert eni.state is new


def test_a_transition_keeps_the_pool_totals_right() -> None:
    totals = PoolCounts()
    eni = _eni(EniState.ATTACHING)
    eni.attach_pool(totals)
    transition(eni, EniEvent.ATTACHED)
    assert totals.as_tuple() == (0, 0, 0, 0, 0, 0)   # no IPs yet, but counted as READY now
    assert eni.pool is totals and eni.ready


def test_an_illegal_transition_raises_and_changes_nothing() -> None:
    eni = _eni(EniState.DELETING)
    with pytest.raises(IllegalTransition, match=r"eni-1.*'attached'.*'deleting'") as err:
        transition(eni, EniEvent.ATTACHED)
    assert err.value.state is EniState.DELETING and err.value.event is EniEvent.ATTACHED
    assert eni.state is EniState.DELETING


def test_each_state_between_others_names_its_next_call() -> None:
    assert isinstance(next_step(_eni(EniState.ATTACHING), "c1", "i-1"), AttachEni)
    assert isinstance(next_step(_eni(EniState.DETACHING), "c2", "i-1"), DetachEni)
    assert next_step(_eni(EniState.DELETING), "c3", "i-1") == DeleteEni("c3", "eni-1")
    assert next_step(_eni(EniState.READY), "c4", "i-1") is None
