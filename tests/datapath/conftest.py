from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.datapath.topology import Node, new_tag


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node(new_tag())
    try:
        n.build()
        yield n
    finally:
        n.destroy()
