"""Importing srlib keeps large blocks on glibc's heap, so a fresh image reuses freed memory
instead of page-faulting through a new mapping (see srlib/__init__.py)."""
import ctypes
import ctypes.util

import numpy as np
import pytest
import torch

import srlib  # noqa: F401


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mapped_blocks() -> int:
    """Blocks glibc holds in mappings of their own (``mallinfo2().hblks``)."""
    try:
        mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    except (OSError, AttributeError, TypeError):
        pytest.skip("not glibc 2.33 or later")
    mallinfo2.restype = _Mallinfo2
    return mallinfo2().hblks


@pytest.mark.parametrize("allocate", [lambda: np.empty(64 << 20, np.uint8), lambda: torch.empty(16 << 20)],
                         ids=["numpy", "torch"])
def test_large_arrays_are_served_from_the_heap_after_import(allocate):
    before = _mapped_blocks()
    block = allocate()
    assert _mapped_blocks() == before
    del block
