"""Quantized weights against their dequantized reference, quantized models against the naive
reference, the quantized artifact's life cycle, and the bench's JSON contract.

Tolerances: a quantized Linear is compared with a float64 product over the weights it
dequantizes to. With float32 activations the fused kernels must agree to 1e-4 of the output's
scale (they accumulate in float32); with bf16 activations to 2% (bf16 keeps 8 bits).
"""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from lantern.runtime.config import OuroConfig, preset
from lantern.runtime.model import OuroForCausalLM
from lantern.runtime.kernels import native
from lantern.runtime.quantize import (
    CLIP_RATIOS, MATRIX_KERNEL_ROWS, Int4Linear, Int8Linear, apply, dequantize_int4, pack_int4, plan, quantize, quantize_int4,
    quantize_weight, tile_int4, unpack_int4, untile_int4,
)

# Every projection fits int4 (widths multiples of 64), unlike the "tiny" preset whose MLP is 160 wide.
INT4_SHAPE = OuroConfig(vocab_size=384, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=4, head_dim=32, max_position_embeddings=512)


def close(fast: torch.Tensor, exact: torch.Tensor, tolerance: float) -> bool:
    return float((fast.double() - exact).abs().max()) <= tolerance * float(exact.abs().max())


def test_int8_weight_round_trips_within_half_a_step():
    w = torch.randn(64, 32)
    q, scale = quantize_weight(w)
    assert q.dtype == torch.int8 and scale.shape == (64,)
    assert torch.all((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-6)


@pytest.mark.parametrize("rows", [1, MATRIX_KERNEL_ROWS + 5])  # the fused decode kernel, and the prompt path
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-4), (torch.bfloat16, 0.02)])
@pytest.mark.parametrize("width", [64, 512])  # 512: one-row bf16 products take the native VNNI kernel where there is one
def test_int8_linear_matches_its_dequantized_weights(rows, dtype, tolerance, width):
    w = torch.randn(48, width) * 0.05
    q, scale = quantize_weight(w)
    fast = Int8Linear(q, scale, dtype)
    x = torch.randn(rows, width, dtype=dtype)
    exact = x.double() @ (q.double() * fast.scale.double()[:, None]).T
    assert close(fast(x), exact, tolerance)


def test_int4_codes_reconstruct_the_weight_and_clipping_never_hurts():
    w = torch.randn(64, 256) * 0.02
    w[5, 7] = 0.5  # an outlier: its group's scale is the top of row 5's grid, the others sit low on it
    quantized = quantize_int4(w, 64)
    codes, scale, zero = quantized.codes, quantized.scale(), quantized.zero()
    assert codes.dtype == torch.uint8 and int(codes.max()) <= 15 and scale.shape == zero.shape == (64, 4)
    assert quantized.scale_codes.dtype == quantized.zero_codes.dtype == torch.uint8 and int(quantized.scale_codes.min()) >= 1
    assert quantized.row_factors.dtype == torch.float32 and quantized.row_factors.shape == (64, 3)
    error = (dequantize_int4(quantized) - w).norm() / w.norm()
    assert error < 0.1  # 16 levels per group of 64 Gaussian weights: about 0.086
    import lantern.runtime.quantize as quantize_module

    try:
        quantize_module.CLIP_RATIOS = (1.0,)
        unclipped = dequantize_int4(quantize_int4(w, 64))
    finally:
        quantize_module.CLIP_RATIOS = CLIP_RATIOS
    per_group = lambda d: (d - w).reshape(64, 4, 64).pow(2).sum(-1)  # noqa: E731
    assert torch.all(per_group(dequantize_int4(quantized)) <= per_group(unclipped) + 1e-12)
    # Unclipped, the 8-bit grids of scale and zero cost almost nothing against bf16 scale and zero.
    plain = w.reshape(64, 4, 64)
    low, high = plain.amin(-1), plain.amax(-1)
    bf16_scale = ((high - low) / 15).bfloat16().float()
    bf16_zero = (low + 8 * bf16_scale).bfloat16().float()
    bf16_codes = torch.round((plain - bf16_zero[..., None]) / bf16_scale[..., None] + 8).clamp(0, 15)
    bf16_error = ((bf16_codes - 8) * bf16_scale[..., None] + bf16_zero[..., None] - plain).norm() / w.norm()
    assert (unclipped - w).norm() / w.norm() <= bf16_error * 1.02


BACKENDS = ["aten"] + (["native"] if native() is not None else [])


@pytest.mark.parametrize("width", [192, 2048, 1088])  # 3 groups; two whole superblocks; one and a short one
def test_int4_layout_round_trips(width):
    codes = torch.randint(0, 16, (32, width), dtype=torch.uint8)
    packed = pack_int4(codes)
    assert packed.shape == (32, width // 2) and torch.equal(unpack_int4(packed), codes)
    groups = min(16, width // 64)  # in the first superblock; a unit is 4 bytes per group
    byte = lambda unit, group, c: int(packed[0, unit * 4 * groups + 4 * group + c])  # noqa: E731
    column = lambda group, offset: int(codes[0, 64 * group + offset])  # noqa: E731
    # byte 4j + c of unit u: column 8u + c of group j low, column 8u + 4 + c high
    assert byte(0, 0, 0) == column(0, 0) | column(0, 4) << 4
    assert byte(3, 2, 1) == column(2, 25) | column(2, 29) << 4


@pytest.mark.parametrize("width", [192, 2048, 1088])
def test_int4_tiles_round_trip_and_keep_a_tile_in_one_run(width):
    quantized = quantize_int4(torch.randn(32, width) * 0.05)
    tiles = tile_int4(quantized)
    superblocks = -(-width // 1024)
    assert tiles.shape == (8, 4 * (width // 2 + 32 * superblocks)) and tiles.dtype == torch.uint8
    back = untile_int4(tiles, width, quantized.row_factors)
    for original, restored in zip(quantized, back):
        assert torch.equal(original, restored)
    # Tile 1 (rows 4-7) starts with unit 0 of each of its rows, in order, then unit 1 of each.
    packed, groups = pack_int4(quantized.codes), min(16, width // 64)
    unit = 4 * groups
    assert torch.equal(tiles[1, :unit], packed[4, :unit]) and torch.equal(tiles[1, unit:2 * unit], packed[5, :unit])
    assert torch.equal(tiles[1, 4 * unit:5 * unit], packed[4, unit:2 * unit])
    # After the first superblock's 8 units of 4 rows: row 4's 16 scale codes, then its zero codes.
    scales = tiles[1, 32 * unit:32 * unit + 32]
    assert torch.equal(scales[:groups], quantized.scale_codes[4, :groups]) and torch.equal(scales[16:16 + groups], quantized.zero_codes[4, :groups])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rows", [1, 3, 20])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-4), (torch.bfloat16, 0.02)])
def test_int4_linear_matches_its_dequantized_weights(backend, rows, dtype, tolerance):
    if backend == "native" and dtype != torch.bfloat16:
        pytest.skip("the native backend serves bf16 models")
    w = torch.randn(1040, 192) * 0.05  # more rows than one 1024-row chunk of the prompt path
    quantized = quantize_int4(w, 64)
    fast = Int4Linear.from_codes(quantized, dtype, backend)
    assert fast.backend == backend
    x = torch.randn(2, rows, 192, dtype=dtype)
    exact = x.double() @ dequantize_int4(quantized).double().T
    out = fast(x)
    assert out.shape == (2, rows, 1040) and out.dtype == dtype
    assert close(out, exact, tolerance)


def test_plan_keeps_gate_and_embeddings_and_puts_the_head_at_int8():
    model = OuroForCausalLM(preset("tiny"))
    int4 = plan(model, "int4")
    assert "model.early_exit_gate" not in int4 and "model.embed_tokens" not in int4
    assert int4["lm_head"] == "int8" and int4["model.layers.0.self_attn.q_proj"] == "int4"
    assert int4["model.layers.0.mlp.down_proj"] == "int8"  # 160 inputs: not whole groups of 64
    assert set(plan(model, "int8").values()) == {"int8"} and plan(model, "none") == {}
    quantize(model, "int4")
    assert isinstance(model.lm_head, Int8Linear) and isinstance(model.model.layers[0].mlp.up_proj, Int4Linear)
    assert isinstance(model.model.early_exit_gate, nn.Linear)
    with pytest.raises(ValueError):
        plan(model, "int3")


def test_apply_refuses_tensors_that_do_not_fit():
    model = OuroForCausalLM(INT4_SHAPE)
    saved = quantize(OuroForCausalLM(INT4_SHAPE), "int4")
    saved.pop("model.layers.1.mlp.up_proj.weight_int4")
    assert not apply(model, "int4", saved)
    assert isinstance(model.model.layers[0].mlp.up_proj, nn.Linear)  # untouched, not half converted


@pytest.fixture(scope="module")
def int4_checkpoint(tmp_path_factory):
    from lantern.runtime.testing import make_random_checkpoint

    return make_random_checkpoint(tmp_path_factory.mktemp("int4"), INT4_SHAPE, seed=3, dtype=torch.float32)


@pytest.mark.parametrize("quant", ["int8", "int4"])
@pytest.mark.parametrize("mode", ["fast", "deep"])
def test_quantized_greedy_decode_matches_the_reference_on_dequantized_weights(int4_checkpoint, quant, mode):
    """The fast quantized path against the naive float64 reference given the weights the quantized
    model stands for (each quantized from the checkpoint's own, independently of the kernels)."""
    from lantern.runtime import load
    from lantern.runtime.loader import read_weights
    from lantern.runtime.reference import ReferenceOuro

    lm = load(int4_checkpoint, dtype="float32", quant=quant)
    assert lm.quant == quant
    weights = dict(read_weights(int4_checkpoint))
    for name, scheme in plan(OuroForCausalLM(INT4_SHAPE), quant).items():
        w = weights[f"{name}.weight"].float()
        if scheme == "int8":
            q, scale = quantize_weight(w)
            weights[f"{name}.weight"] = q.double() * scale.double()[:, None]
        else:
            weights[f"{name}.weight"] = dequantize_int4(quantize_int4(w, 64)).double()
    reference = ReferenceOuro(weights, lm.config, torch.float64)
    ids = lm.encode("Ouro loops four times")
    expected = reference.generate_greedy(ids[0].tolist(), 10, mode=mode, threshold=0.5)
    got = [(t.id, t.exit_step) for t in lm.generate(ids, max_new_tokens=10, mode=mode, exit_threshold=0.5)]
    assert got == expected


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_quantized_weights_are_saved_once_and_reused(tmp_path, quant):
    from lantern.runtime import load
    from lantern.runtime.loader import quant_artifact
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ckpt", "tiny", seed=4)
    artifact = quant_artifact(checkpoint, quant)
    artifact.parent.mkdir(parents=True)
    stale = artifact.parent / f"model-{quant}-old-format.safetensors"  # what an older version saved
    other = artifact.parent / f"model-{'int4' if quant == 'int8' else 'int8'}-old-format.safetensors"
    stale.write_bytes(b"old")
    other.write_bytes(b"other")
    first = load(checkpoint, quant=quant)
    assert artifact.exists()
    assert not stale.exists() and other.exists()  # the older format of this mode is dropped once the new one is saved
    stamp = artifact.stat().st_mtime_ns
    second = load(checkpoint, quant=quant)
    assert artifact.stat().st_mtime_ns == stamp  # reused, not rewritten
    ids = first.encode("Ouro loops four times")
    tokens = [t.id for t in first.generate(ids, max_new_tokens=8)]
    assert [t.id for t in second.generate(ids, max_new_tokens=8)] == tokens
    artifact.write_bytes(b"garbage")  # a corrupt artifact is replaced, never trusted
    third = load(checkpoint, quant=quant)
    assert [t.id for t in third.generate(ids, max_new_tokens=8)] == tokens
    assert artifact.stat().st_size > 100


def test_int4_is_refused_off_the_cpu_and_unknown_modes_get_one_line(tmp_path):
    from lantern.errors import CheckpointError
    from lantern.runtime import load
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ckpt", "tiny", seed=6)
    with pytest.raises(CheckpointError, match="none, int8 or int4"):
        load(checkpoint, quant="int2")
    if torch.cuda.is_available():
        with pytest.raises(CheckpointError, match="CPU only"):
            load(checkpoint, device="cuda", quant="int4")


def test_release_pages_drops_mapped_pages_and_leaves_heap_memory_alone(tmp_path):
    from safetensors.torch import save_file

    from lantern.runtime.loader import read_safetensors, release_pages

    original = torch.randn(512, 1024)  # 2 MB: many whole pages
    save_file({"w": original}, str(tmp_path / "w.safetensors"))
    mapped = read_safetensors(tmp_path / "w.safetensors")["w"]
    assert torch.equal(mapped, original)
    release_pages(mapped)
    assert torch.equal(mapped, original)  # faulted back in from the file
    heap = original.clone()
    release_pages(heap)  # not a mapping of ours: must not be touched (on heap memory the call would zero it)
    assert torch.equal(heap, original)


def test_the_int8_setting_is_an_alias_of_quant_int8():
    from lantern.settings import load_settings

    assert load_settings({"int8": True}).quant == "int8"
    assert load_settings({"int8": True, "quant": "int4"}).quant == "int4"
    assert load_settings({}).quant == "none"


def test_lantern_bench_prints_the_promised_fields(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lantern", "--home", str(tmp_path), "bench", "--shape", "tiny", "--prompt-len", "16",
         "--new-tokens", "6", "--mode", "both", "--gate-bias", "1", "--quant", "int4", "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("gemv_gbps", "read_gbps", "peak_mem_mb", "device", "deep_speedup", "deep_speedup_target", "int4_top1_agreement",
                "bfloat16_vs_float32_top1_agreement"):
        assert key in result
    assert result["quant"] == "int4" and result["threads"] == 1
    for run in result["runs"].values():
        assert {"decode_tok_s", "prefill_tok_s", "avg_exit_steps", "achieved_gbps", "bytes_per_token", "read_gbps",
                "fraction_of_read_ceiling", "fraction_of_gemv_ceiling"} <= set(run)
        assert 0 < run["fraction_of_read_ceiling"] < 1 and run["read_gbps"] > 0.5
    assert result["runs"]["fast"]["avg_exit_steps"] == 4.0 and result["runs"]["deep"]["avg_exit_steps"] < 4.0
    # FAST reads every layer four times per token, DEEP fewer: the byte count follows the depth.
    assert result["runs"]["deep"]["bytes_per_token"] < result["runs"]["fast"]["bytes_per_token"]


def test_lantern_bench_compares_quantization_modes_round_by_round(tmp_path):
    """`--quant none,int8`: both models in one process, each round decoding once with each and timing
    PREFILL_SAMPLES prefills of each; the ratios are the medians of the rounds' ratios."""
    from lantern.runtime.bench import PREFILL_SAMPLES

    done = subprocess.run(
        [sys.executable, "-m", "lantern", "--home", str(tmp_path), "bench", "--shape", "tiny", "--prompt-len", "16",
         "--new-tokens", "4", "--quant", "none,int8", "--rounds", "2", "--threads", "1", "--no-agreement", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["quant"] == "none,int8" and result["rounds"] == 2 and set(result["by_quant"]) == {"none", "int8"}
    base, int8 = result["by_quant"]["none"], result["by_quant"]["int8"]
    for row in (base, int8):
        assert len(row["prefill_samples_tok_s"]) == 2 and all(len(r) == PREFILL_SAMPLES for r in row["prefill_samples_tok_s"])
        assert row["decode_tok_s"] > 0 and 0 < row["fraction_of_read_ceiling"] < 1
    assert int8["bytes_per_token"] < base["bytes_per_token"]
    assert len(int8["decode_speedup_each_round"]) == 2 and len(int8["prefill_speedup_each_round"]) == 2
    assert int8["decode_speedup"] == pytest.approx(sorted(int8["decode_speedup_each_round"])[0] / 2
                                                   + sorted(int8["decode_speedup_each_round"])[1] / 2, abs=2e-3)
    medians = [sorted(r)[PREFILL_SAMPLES // 2] for r in int8["prefill_samples_tok_s"]]
    assert int8["prefill_tok_s"] == pytest.approx(sorted(medians)[0] / 2 + sorted(medians)[1] / 2, abs=0.02)


def test_lantern_bench_human_output_names_the_ceiling_and_the_profile(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lantern", "--home", str(tmp_path), "bench", "--shape", "tiny", "--prompt-len", "8",
         "--new-tokens", "4", "--int8", "--no-agreement", "--profile"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "deprecated" in done.stderr and "quant int8" in done.stdout
    assert "of the read ceiling" in done.stdout and "GB read per token" in done.stdout
    for part in ("matrix-vector products", "attention", "norms and elementwise", "exit gate and readback", "Python and glue"):
        assert part in done.stdout


def test_lantern_ask_quant_int4_reaches_the_runtime_and_says_what_it_costs(tmp_path, tiny, isolated_home):
    from scripted import DOCS

    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    lantern = [sys.executable, "-m", "lantern", "--home", str(home)]
    assert subprocess.run([*lantern, "ingest", str(docs)], capture_output=True, text=True, timeout=300).returncode == 0
    done = subprocess.run([*lantern, "--set", f"model={tiny}", "--set", "max_new_tokens=8", "ask", "When does Ouro stop looping?",
                           "--quant", "int4", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "int4 weights" in done.stderr and "accuracy" in done.stderr
    assert json.loads(done.stdout)["model"] == str(tiny)
    # The loader made the int4 weights (under LANTERN_HOME from the environment: the loader does not see --home).
    assert list((isolated_home / "quantized").glob("*/model-int4-g*.safetensors"))
    bad = subprocess.run([*lantern, "ask", "x", "--quant", "int5"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "quant" in bad.stderr


def test_int8_block_sums_over_many_rows_are_the_whole_sum():
    """The prompt kernel's per-block code sums are computed a few thousand rows at a time (a whole
    head at once needed an int32 copy of it); past a chunk boundary they are the one-shot sums."""
    generator = torch.Generator().manual_seed(7)
    codes, scale = quantize_weight(torch.randn(5000, 512, generator=generator))
    layer = Int8Linear(codes, scale, torch.bfloat16)
    expected = codes.to(torch.int64).reshape(5000, 2, 256).sum(dim=-1)
    sums = layer._block_sums()
    assert sums.dtype == torch.int32 and sums.shape == (5000, 2) and torch.equal(sums.to(torch.int64), expected)


def test_side_by_side_decodes_one_token_of_each_run_in_turn(int4_checkpoint, monkeypatch):
    """Compared runs advance token by token in lockstep (so a slow moment of a shared machine lands
    on all of them), and running beside another run changes no run's tokens."""
    from lantern.runtime import bench, load

    models = {"none": load(int4_checkpoint, dtype="float32"), "int8": load(int4_checkpoint, dtype="float32", quant="int8")}
    prompt = models["none"].encode("Ouro loops four times")
    alone = {quant: [t.id for t in lm.generate(prompt, max_new_tokens=5, mode="fast")] for quant, lm in models.items()}
    order, tokens, real = [], {quant: [] for quant in models}, bench.timed_tokens

    def recorded(lm, *args):
        name = next(q for q, m in models.items() if m is lm)
        for token, seconds in real(lm, *args):
            order.append(name)
            tokens[name].append(token.id)
            yield token, seconds

    monkeypatch.setattr(bench, "timed_tokens", recorded)
    runs = bench.side_by_side({quant: (lm, "fast") for quant, lm in models.items()}, prompt, 5, 0.5)
    assert order == ["none", "int8"] * 5
    assert tokens == alone
    for run in runs.values():
        assert run["avg_exit_steps"] == 4.0 and run["decode_tok_s"] > 0 and run["bytes_per_token"] > 0
