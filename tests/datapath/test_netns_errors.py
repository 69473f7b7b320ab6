"""A CNI_NETNS the daemon cannot enter gets an error that says so, not a bare EINVAL."""

from __future__ import annotations

import os

import pytest

from terway.datapath.netns import _setns


@pytest.mark.privileged
def test_a_file_that_is_not_a_netns_is_named_in_the_error() -> None:
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY)  # a namespace, but not a network one
    try:
        with pytest.raises(OSError, match="is not a network namespace this daemon can see"):
            _setns(fd)
    finally:
        os.close(fd)
