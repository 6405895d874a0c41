"""The web worker's malloc setting that keeps its memory flat across large uploads (see core.memory)."""

import platform

import pytest

from core.memory import return_large_blocks_to_the_system


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_glibc_takes_the_fixed_mmap_threshold():
    assert return_large_blocks_to_the_system() is True
