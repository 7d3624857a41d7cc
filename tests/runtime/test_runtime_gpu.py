"""CUDA paths of the runtime against the CPU fast path; skipped cleanly where torch sees no GPU."""

import pytest
import torch

from lantern.runtime import load
from lantern.runtime.testing import make_random_checkpoint

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_random_checkpoint(tmp_path_factory.mktemp("gpu"), "tiny", seed=0, dtype=torch.float32)


@pytest.mark.parametrize("mode", ["fast", "deep"])
def test_cuda_greedy_matches_cpu(checkpoint, mode):
    cpu = load(checkpoint, device="cpu", dtype="float32")
    gpu = load(checkpoint, device="cuda", dtype="float32")
    ids = cpu.encode("Ouro is a looped language model")
    expected = [(t.id, t.exit_step) for t in cpu.generate(ids, max_new_tokens=12, mode=mode)]
    assert [(t.id, t.exit_step) for t in gpu.generate(ids, max_new_tokens=12, mode=mode)] == expected


def test_cuda_int8_and_bf16_generate(checkpoint):
    for lm in (load(checkpoint, device="cuda", dtype="bfloat16"), load(checkpoint, device="cuda", dtype="bfloat16", int8=True)):
        assert 1 <= len(list(lm.generate("Ouro loops", max_new_tokens=6))) <= 6
