"""Fixtures shared by srlib's tests."""
import os

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread: far faster for tiny tensors on busy cores, and the same in subprocess runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def isa_unset(monkeypatch):
    """``ONEDNN_MAX_CPU_ISA`` unset for the test (restored after it by ``isa_cap_restored``)."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


@pytest.fixture(autouse=True)
def isa_cap_restored():
    """``ONEDNN_MAX_CPU_ISA`` as it was before each test: the srlib command, run in-process by
    tests, caps oneDNN for narrow networks by setting it, and a cap left behind would reach
    every later test's subprocesses (whose kernels would then differ from this process's)."""
    before = os.environ.get("ONEDNN_MAX_CPU_ISA")
    yield
    if before is None:
        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
    else:
        os.environ["ONEDNN_MAX_CPU_ISA"] = before
