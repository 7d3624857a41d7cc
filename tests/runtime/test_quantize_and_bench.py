"""int8 weight-only quantization against its dequantized reference, and the bench's JSON contract."""

import json
import subprocess
import sys

import torch
from torch import nn

from lantern.runtime.quantize import Int8Linear, quantize_int8, quantize_weight


def test_quantized_weight_round_trips_within_half_a_step():
    w = torch.randn(64, 32)
    q, scale = quantize_weight(w)
    assert q.dtype == torch.int8 and scale.shape == (64,)
    assert torch.all((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-6)


def test_int8_linear_matches_dequantized_matmul():
    linear = nn.Linear(64, 48, bias=False).to(torch.bfloat16)
    q, scale = quantize_weight(linear.weight.data)
    fast = Int8Linear(q, scale, torch.bfloat16)
    x = torch.randn(3, 5, 64, dtype=torch.bfloat16)
    naive = x.float() @ (q.float() * scale.to(torch.bfloat16).float()[:, None]).T
    assert torch.allclose(fast(x).float(), naive, rtol=0.02, atol=0.02)


def test_quantize_int8_keeps_the_exit_gate_exact():
    from lantern.runtime.config import preset
    from lantern.runtime.model import OuroForCausalLM

    model = OuroForCausalLM(preset("tiny"))
    quantize_int8(model)
    assert isinstance(model.lm_head, Int8Linear) and isinstance(model.model.layers[0].mlp.up_proj, Int8Linear)
    assert isinstance(model.model.early_exit_gate, nn.Linear)


def test_lantern_bench_prints_the_promised_fields(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lantern", "--home", str(tmp_path), "bench", "--shape", "tiny", "--prompt-len", "16",
         "--new-tokens", "6", "--mode", "both", "--gate-bias", "1", "--int8", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("gemv_gbps", "peak_mem_mb", "device", "deep_speedup", "deep_speedup_target", "int8_top1_agreement"):
        assert key in result
    for run in result["runs"].values():
        assert {"decode_tok_s", "prefill_tok_s", "avg_exit_steps", "achieved_gbps", "fraction_of_gemv_ceiling"} <= set(run)
    assert result["runs"]["fast"]["avg_exit_steps"] == 4.0 and result["runs"]["deep"]["avg_exit_steps"] < 4.0


def test_int8_weights_are_saved_once_and_reused(tmp_path):
    from lantern.runtime import load
    from lantern.runtime.loader import int8_artifact
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ckpt", "tiny", seed=4)
    first = load(checkpoint, int8=True)
    artifact = int8_artifact(checkpoint)
    assert artifact.exists()
    stamp = artifact.stat().st_mtime_ns
    second = load(checkpoint, int8=True)
    assert artifact.stat().st_mtime_ns == stamp  # reused, not rewritten
    ids = first.encode("Ouro loops four times")
    assert [t.id for t in first.generate(ids, max_new_tokens=8)] == [t.id for t in second.generate(ids, max_new_tokens=8)]
    artifact.write_bytes(b"garbage")  # a corrupt artifact is replaced, never trusted
    third = load(checkpoint, int8=True)
    assert [t.id for t in third.generate(ids, max_new_tokens=8)] == [t.id for t in first.generate(ids, max_new_tokens=8)]
