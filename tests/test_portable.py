"""srlib.portable: pinned processes compute alike whatever kernels the CPU would pick."""
import os
import subprocess
import sys

import pytest
import torch

from srlib import portable

FINGERPRINT = "import json; from srlib import portable; portable.pin(); print(json.dumps(portable.fingerprint()))"
AVX2_ONLY_CPU = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OMP_NUM_THREADS": "1"}


def fresh_python(code: str, extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **portable.ENVIRONMENT, **extra}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_pinned_training_is_identical_when_the_cpu_would_pick_other_kernels():
    here = fresh_python(FINGERPRINT, {})
    elsewhere = fresh_python(FINGERPRINT, AVX2_ONLY_CPU)
    assert here.returncode == 0, here.stderr
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert here.stdout == elsewhere.stdout


def test_pin_uses_a_fixed_thread_count_and_no_onednn_or_nnpack():
    out = fresh_python("import torch; from srlib import portable; portable.pin(); "
                       "print(torch.get_num_threads(), torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled(), "
                       "torch.backends.cpu.get_cpu_capability())", {"OMP_NUM_THREADS": "1"})
    assert out.stdout.split() == [str(portable.THREADS), "False", "False", "AVX2"], out.stderr


def test_native_kernels_turns_onednn_and_nnpack_on_inside_and_restores_them():
    before = torch.backends.mkldnn.enabled, torch.backends.nnpack.set_flags(False)[0]
    torch.backends.mkldnn.enabled = False
    try:
        threads = torch.get_num_threads()
        with portable.native_kernels(threads=1):
            assert torch.backends.mkldnn.enabled and torch._C._get_nnpack_enabled() and torch.get_num_threads() == 1
        assert not torch.backends.mkldnn.enabled and not torch._C._get_nnpack_enabled()
        assert torch.get_num_threads() == threads
    finally:
        torch.backends.mkldnn.enabled = before[0]
        torch.backends.nnpack.set_flags(before[1])


def test_runner_starts_the_command_with_the_pinned_environment():
    names = list(portable.ENVIRONMENT)
    out = subprocess.run([sys.executable, "-m", "srlib.portable", sys.executable, "-c",
                          f"import os; print([os.environ.get(n) for n in {names!r}])"],
                         capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k not in names})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(list(portable.ENVIRONMENT.values()))


@pytest.mark.parametrize("argv", [[], ["no-such-command-srlib"]])
def test_runner_answers_a_missing_or_unknown_command_with_exit_2(argv):
    out = subprocess.run([sys.executable, "-m", "srlib.portable", *argv], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len((out.stdout + out.stderr).strip().splitlines()) <= 2
