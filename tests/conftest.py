"""Fixtures shared by srlib's tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread: far faster for tiny tensors on busy cores, and the same in subprocess runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
