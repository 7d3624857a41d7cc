"""The native kernels against float64 products over the weights they stand for: bf16 (and PyTorch's
own bf16 path) matrix-vector products, int8 and int4 products of one row and of many, RMSNorm, RoPE
and decode attention, on shapes with row remainders and widths that are not multiples of the
vector length; skipped on CPUs without AVX-512 BF16 and VNNI, where nothing is swapped in.
Tolerance: one rounding of a float32 sum to bf16 (2^-8 of the largest output, or of the sum of
magnitudes where an output can cancel), plus, for quantized weights, the stated rounding of the
activations to int8, checked both as a bound and against that rounding emulated in float64."""

import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lantern.runtime.kernels import GemvLinear, cpu_has_avx512_bf16, gemv_bf16, gemv_int8, install, matmul_int4, matmul_int8, native
from lantern.runtime.quantize import dequantize_int4, quantize_int4, quantize_weight, tile_int4

pytestmark = pytest.mark.skipif(not cpu_has_avx512_bf16() or shutil.which("c++") is None,
                                reason="no AVX-512 BF16 and VNNI, or no C++ compiler: the kernels are not used here")


def test_the_kernels_build_where_the_cpu_has_them():
    """A mistake in the C++ source must fail here, not skip every test of this file."""
    assert native() is not None, "the native kernels did not build; see the warning logged by lantern.runtime.kernels"


@pytest.mark.parametrize("n,k", [(7, 40), (64, 64), (160, 2048), (2048, 5632)])
def test_kernel_matches_a_float64_product(n, k):
    w = (torch.randn(n, k) * 0.05).to(torch.bfloat16)
    x = torch.randn(k).to(torch.bfloat16)
    exact = w.double() @ x.double()
    out = gemv_bf16(x, w)
    assert out.dtype == torch.bfloat16 and out.shape == (n,)
    # One rounding to bf16 of a float32 sum: within 2^-8 of the largest output, as PyTorch's own.
    scale = float(exact.abs().max())
    assert float((out.double() - exact).abs().max()) <= scale / 256
    torch_path = F.linear(x[None], w)[0]
    assert float((out.double() - torch_path.double()).abs().max()) <= scale / 128


def test_gemv_linear_keeps_the_weight_and_falls_back_for_prompts():
    model = nn.Sequential(nn.Linear(64, 48, bias=False), nn.Linear(48, 1, bias=False)).to(torch.bfloat16)
    weight = model[0].weight
    assert install(model) == 1
    assert isinstance(model[0], GemvLinear) and model[0].weight is weight and type(model[1]) is nn.Linear
    assert set(model.state_dict()) == {"0.weight", "1.weight"}
    prompt = torch.randn(2, 5, 64, dtype=torch.bfloat16)
    assert torch.equal(model[0](prompt), F.linear(prompt, weight))  # many rows: PyTorch's kernel
    one = torch.randn(1, 1, 64, dtype=torch.bfloat16)
    assert torch.allclose(model[0](one).float(), F.linear(one, weight).float(), rtol=0.02, atol=0.02)


@pytest.mark.parametrize("n,k", [(16, 64), (96, 192), (32, 1088), (2048, 5632)])  # 16: half a prompt panel; 96: three; 1088: a short last superblock
@pytest.mark.parametrize("m", [1, 3, 9])  # decode; less than one 8-row tile of x; a tile and a remainder
def test_int4_kernel_matches_the_reference_within_its_activation_rounding(n, k, m):
    """matmul_int4 rounds each row of x to int8 per group of 64 (step sx_g = max|x_g|/127, each value
    within sx_g / 2) for the codes' sum only: per group it computes scale * sum(code * xq) * sx_g +
    (zero - 8 scale) * sum(x). So against the exact product over the dequantized weights an output
    may be off by sum_g scale_g * sum_k code_k * sx_g / 2, plus a bf16 rounding of the output;
    against that rounding emulated in float64, only float32 summation and the bf16 rounding remain.
    Prompts (the panel kernel) and one row (decode's tile kernel) round x the same way, so they
    differ only in the order of their float32 sums and the bf16 rounding."""
    generator = torch.Generator().manual_seed(n * 1000 + k + m)
    quantized = quantize_int4(torch.randn(n, k, generator=generator) * 0.05)
    codes, scale, zero = quantized.codes, quantized.scale(), quantized.zero()
    weights = dequantize_int4(quantized).double()
    x = torch.randn(m, k, generator=generator).to(torch.bfloat16)
    tiles = tile_int4(quantized)
    out = matmul_int4(x, tiles, quantized.row_factors)
    assert out.dtype == torch.bfloat16 and out.shape == (m, n)
    exact = x.double() @ weights.T
    groups = x.float().reshape(m, -1, 64)
    peak = groups.abs().amax(dim=-1, keepdim=True)
    step = (peak / 127).double()
    scaled_codes = (codes.double().reshape(n, -1, 64) * scale.double()[..., None]).reshape(n, k)  # scale * code per weight
    magnitude = x.double().abs() @ weights.abs().T + (x.double().abs() @ scaled_codes.T)
    rounding = (step / 2).expand(-1, -1, 64).reshape(m, k) @ scaled_codes.T * (1 + 1e-5)
    assert bool(((out.double() - exact).abs() <= rounding + magnitude / 256).all())
    inverse = torch.where(peak > 0, torch.tensor(127.0) / peak, torch.zeros_like(peak))
    rounded = (torch.round(groups * inverse).double() * step).reshape(m, k)  # what the kernel multiplies
    offsets = (zero.double() - 8 * scale.double())  # [n, groups]
    emulated = rounded @ scaled_codes.T + x.double().reshape(m, -1, 64).sum(-1) @ offsets.T
    assert bool(((out.double() - emulated).abs() <= magnitude / 256).all())
    one_by_one = torch.cat([matmul_int4(x[row : row + 1], tiles, quantized.row_factors) for row in range(m)])
    assert bool(((out.double() - one_by_one.double()).abs() <= magnitude / 128).all())


@pytest.mark.parametrize("n,k", [(1, 256), (7, 768), (2048, 5632)])  # 7 rows: a 4-row block and a remainder
def test_int8_kernel_matches_a_float64_product_within_its_activation_rounding(n, k):
    """gemv_int8 quantizes x to int8 per block of 256: each value within half a step (max|x_b|/127)
    of its own, plus float32 rounding of the step. So against the exact product over the int8
    weights, each output may be off by sum_j |w_j| * step_j / 2, plus a bf16 rounding of the
    output (2^-8 of sum_j |w_j x_j|, which cannot vanish by cancellation as a single output can);
    against that rounding done here in float64, only summation order and the bf16 rounding remain."""
    generator = torch.Generator().manual_seed(n * 1000 + k)
    codes, scale = quantize_weight(torch.randn(n, k, generator=generator) * 0.05)
    x = torch.randn(k, generator=generator).to(torch.bfloat16)
    weights = codes.double() * scale.double()[:, None]
    exact = weights @ x.double()
    out = gemv_int8(x, codes, scale.float())
    assert out.dtype == torch.bfloat16 and out.shape == (n,)
    blocks = x.double().reshape(-1, 256)
    step = (blocks.abs().amax(dim=1, keepdim=True) / 127).expand(-1, 256).reshape(-1)
    magnitude = weights.abs() @ x.double().abs()
    rounding = (weights.abs() * (step / 2)).sum(dim=1) * (1 + 1e-5)
    assert bool(((out.double() - exact).abs() <= rounding + magnitude / 256).all())
    # The kernel's own rounding, in float32 as the kernel does it (127 / peak, then round half to even).
    peak = x.float().reshape(-1, 256).abs().amax(dim=1, keepdim=True)
    inverse = torch.where(peak > 0, torch.tensor(127.0) / peak, torch.zeros_like(peak))
    q = torch.round(x.float().reshape(-1, 256) * inverse)
    emulated = weights @ (q.double() * (peak / 127).double()).reshape(-1)
    assert bool(((out.double() - emulated).abs() <= magnitude / 256).all())


@pytest.mark.parametrize("n,k", [(7, 256), (24, 768), (2048, 5632)])  # 7 rows: a 4-row tile and a remainder; 24: six tiles
@pytest.mark.parametrize("m", [2, 9])  # fewer rows of x than a tile; two whole 4-row tiles and a remainder
def test_int8_prompt_kernel_rounds_each_row_as_the_decode_kernel_does(n, k, m):
    """matmul_int8 over m rows against gemv_int8 over each row alone (the same int8 rounding of x
    per block of 256, so only float32 summation order and the bf16 rounding differ), and against
    the exact product within that rounding's bound."""
    generator = torch.Generator().manual_seed(n + k + m)
    codes, scale = quantize_weight(torch.randn(n, k, generator=generator) * 0.05)
    x = torch.randn(m, k, generator=generator).to(torch.bfloat16)
    sums = codes.reshape(n, -1, 256).sum(dim=-1, dtype=torch.int32)
    out = matmul_int8(x, codes, scale.float(), sums)
    assert out.dtype == torch.bfloat16 and out.shape == (m, n)
    weights = codes.double() * scale.double()[:, None]
    magnitude = x.double().abs() @ weights.abs().T
    one_by_one = torch.stack([gemv_int8(row, codes, scale.float()) for row in x])
    assert bool(((out.double() - one_by_one.double()).abs() <= magnitude / 128).all())
    step = (x.double().reshape(m, -1, 256).abs().amax(dim=-1, keepdim=True) / 127).expand(-1, -1, 256).reshape(m, k)
    rounding = (step / 2) @ weights.abs().T * (1 + 1e-5)
    assert bool(((out.double() - x.double() @ weights.T).abs() <= rounding + magnitude / 256).all())


@pytest.mark.parametrize("shape", [(1, 1, 2048), (3, 5, 64), (2, 40)])  # 40: a width that is not a multiple of 16
def test_native_rmsnorm_matches_the_runtime_rmsnorm(shape):
    """The fused kernel against RMSNorm's eight PyTorch ops: only the float32 sum of squares is
    added in another order, so an output may differ by one bf16 rounding step (2^-8 relative)."""
    from lantern.runtime.kernels import NativeRMSNorm
    from lantern.runtime.model import RMSNorm

    generator = torch.Generator().manual_seed(shape[-1])
    reference = RMSNorm(shape[-1], 1e-6).to(torch.bfloat16)
    reference.weight.data = (torch.randn(shape[-1], generator=generator) * 2).to(torch.bfloat16)
    fused = RMSNorm(shape[-1], 1e-6).to(torch.bfloat16)
    fused.weight.data = reference.weight.data.clone()
    fused.__class__ = NativeRMSNorm
    x = (torch.randn(*shape, generator=generator) * 3).to(torch.bfloat16)
    expected, got = reference(x), fused(x)
    assert got.dtype == torch.bfloat16 and got.shape == expected.shape
    ulp = expected.float().abs() * 2**-7 + 1e-30
    assert bool(((got.float() - expected.float()).abs() <= ulp).all())
    assert float((got.float() == expected.float()).float().mean()) > 0.99  # nearly all bit for bit
    assert torch.equal(fused(x.float()), RMSNorm.forward(fused, x.float()))  # other dtypes: the plain module


@pytest.mark.parametrize("heads,kv_heads,queries,with_mask", [(4, 4, 1, False), (8, 2, 3, True)])
def test_native_decode_attention_matches_few_query_attention(heads, kv_heads, queries, with_mask):
    """The fused decode attention against model.few_query_attention on the same bf16 inputs, with
    k and v as the cache hands them over (prefix views of a longer buffer) and grouped key-value
    heads: the same float32 computation in another summation order, so within one bf16 rounding
    step of the output's scale."""
    from lantern.runtime.config import preset
    from lantern.runtime.kernels import NativeAttention
    from lantern.runtime.model import Attention, few_query_attention

    import dataclasses

    config = dataclasses.replace(preset("tiny"), num_attention_heads=heads, num_key_value_heads=kv_heads)
    attention = Attention(config)
    attention.__class__ = NativeAttention
    generator = torch.Generator().manual_seed(heads + queries)
    d, t = config.head_dim, 37
    q = torch.randn(1, queries, heads, d, generator=generator).to(torch.bfloat16).transpose(1, 2)  # as Attention makes it
    buffer_k = torch.randn(1, kv_heads, 64, d, generator=generator).to(torch.bfloat16)
    buffer_v = torch.randn(1, kv_heads, 64, d, generator=generator).to(torch.bfloat16)
    k, v = buffer_k[:, :, :t], buffer_v[:, :, :t]
    mask = (torch.rand(1, 1, queries, t, generator=generator) > 0.3) if with_mask else None
    if mask is not None:
        mask[..., 0] = True
    got = attention.few_query(q, k, v, mask)
    expected = few_query_attention(q, *attention.per_head(k, v), mask)
    assert got.dtype == torch.bfloat16 and got.shape == expected.shape == (1, heads, queries, d)
    assert float((got.float() - expected.float()).abs().max()) <= float(expected.float().abs().max()) * 2**-7


def test_native_rope_is_the_runtime_rope_bit_for_bit():
    """The fused RoPE rounds as PyTorch's three bf16 ops do, so it gives the same bits, on q as
    Attention makes it (a transposed view) and for several query rows."""
    from lantern.runtime.config import preset
    from lantern.runtime.kernels import NativeAttention
    from lantern.runtime.model import Attention, rope_tables

    import dataclasses

    config = dataclasses.replace(preset("tiny"), head_dim=64)
    attention = Attention(config)
    attention.__class__ = NativeAttention
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, config.num_attention_heads, 64, generator=generator).to(torch.bfloat16).transpose(1, 2)
    cos, sin = rope_tables(torch.tensor([[5, 6, 7], [40, 41, 42]]), 64, config.rope_theta, torch.bfloat16)
    assert torch.equal(attention.rotate(x, cos, sin), Attention.rotate(attention, x, cos, sin))


def record_native_calls(monkeypatch) -> list[str]:
    """The names of the native kernels called from now on (each call still runs the real kernel)."""
    from lantern.runtime import kernels

    called: list[str] = []
    real = kernels.native()

    class Spy:
        def __getattr__(self, name):
            called.append(name)
            return getattr(real, name)

    monkeypatch.setattr(kernels, "native", lambda: Spy())
    return called


def test_a_bf16_decode_step_goes_through_every_native_kernel(tmp_path, monkeypatch):
    """The numeric tests above would pass on PyTorch's path too; this one checks the dispatch: a
    tiny bf16 checkpoint loaded on CPU runs its prompt's norms natively and decodes each loop step's
    layers as one native call (DecodeStack over the layers' DecodeLayer steps), and with the fused
    layer switched off through the GEMV, RMSNorm, RoPE and attention kernels."""
    import dataclasses

    from lantern.runtime import load
    from lantern.runtime.config import preset
    from lantern.runtime.testing import make_random_checkpoint

    shape = dataclasses.replace(preset("tiny"), head_dim=32)  # the RoPE kernel takes head widths of 32 and up
    lm = load(make_random_checkpoint(tmp_path / "ouro", shape, seed=1), device="cpu", dtype="bfloat16")
    called = record_native_calls(monkeypatch)
    tokens = list(lm.generate(lm.encode("Ouro loops"), max_new_tokens=3, mode="fast", exit_threshold=0.5))
    assert len(tokens) == 3
    assert {"rmsnorm_bf16", "DecodeLayer", "DecodeStack"} <= set(called)
    called.clear()
    from lantern.runtime import kernels

    monkeypatch.setattr(kernels, "_decode_layer", lambda block, parts: None)
    for block in lm.model.model.layers:
        block.__dict__.pop("_fused_layer", None)
    lm.model.__dict__.pop("_native_stack", None)
    tokens = list(lm.generate(lm.encode("Ouro loops"), max_new_tokens=3, mode="fast", exit_threshold=0.5))
    assert {"gemv_bf16", "rmsnorm_bf16", "rope_bf16", "decode_attention_bf16"} <= set(called)
    assert "DecodeLayer" not in called


@pytest.mark.parametrize("quant,expected", [("int8", {"DecodeLayer", "matmul_int8", "gemv_int8"}), ("int4", {"DecodeLayer", "matmul_int4", "gemv_int8"})])
def test_quantized_bf16_prompts_and_decode_steps_go_through_the_vnni_kernels(tmp_path, monkeypatch, isolated_home, quant, expected):
    """The dispatch for quantized weights: a prompt of several tokens and the decode steps after it."""
    from lantern.runtime import load
    from lantern.runtime.config import OuroConfig
    from lantern.runtime.testing import make_random_checkpoint

    shape = OuroConfig(vocab_size=384, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, head_dim=64, max_position_embeddings=256)  # widths the kernels take
    lm = load(make_random_checkpoint(tmp_path / "ouro", shape, seed=2), device="cpu", dtype="bfloat16", quant=quant)
    called = record_native_calls(monkeypatch)
    tokens = list(lm.generate(lm.encode("Ouro loops four times over its layers"), max_new_tokens=3, mode="fast", exit_threshold=0.5))
    assert len(tokens) == 3
    assert expected <= set(called)


@pytest.mark.parametrize("quant", ["none", "int8", "int4"])
@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2)])
def test_the_fused_decode_layer_is_the_modules_bit_for_bit(quant, heads, kv_heads):
    """DecodeLayer.step against the same block's modules (NativeAttention, NativeRMSNorm, the
    products' kernels) on one decode token, several layers deep in one cache: the same parts with the
    same roundings, so the same output and the same cache columns, bit for bit; with grouped
    key-value heads, and for bf16, int8 and int4 products. DecodeStack.step, all the layers in one
    call, too."""
    from lantern.runtime import quantize
    from lantern.runtime.cache import StaticKVCache
    from lantern.runtime.config import OuroConfig
    from lantern.runtime.kernels import NativeBlock
    from lantern.runtime.model import Block, rope_tables

    config = OuroConfig(hidden_size=256, intermediate_size=512, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=64)
    generator = torch.Generator().manual_seed(heads * 10 + kv_heads)
    layers = nn.ModuleList(Block(config) for _ in range(3))
    for parameter in layers.parameters():
        parameter.data = (torch.randn(parameter.shape, generator=generator) * 0.05 + (1.0 if parameter.dim() == 1 else 0.0))
    layers = layers.to(torch.bfloat16)
    if quant != "none":
        quantize.quantize(layers, quant)
    assert install(layers) > 0 and all(type(layer) is NativeBlock for layer in layers)
    cache = StaticKVCache(1, 3, 1, kv_heads, 40, 64, torch.bfloat16, "cpu")
    cache.k.copy_(torch.randn(cache.k.shape, generator=generator))
    cache.v.copy_(torch.randn(cache.v.shape, generator=generator))
    position = 29
    cos, sin = rope_tables(torch.tensor([[position]]), 64, config.rope_theta, torch.bfloat16)
    x = torch.randn(1, 1, 256, generator=generator).to(torch.bfloat16)
    keys, values = cache.k.clone(), cache.v.clone()

    def run(step):
        h = x
        for index, layer in enumerate(layers):
            h = step(layer, h, cos, sin, None, cache, index, position)
        return h

    with torch.inference_mode():
        modules = run(Block.forward)
        modules_k, modules_v = cache.k.clone(), cache.v.clone()
        cache.k.copy_(keys)
        cache.v.copy_(values)
        fused = run(NativeBlock.forward)
        fused_k, fused_v = cache.k.clone(), cache.v.clone()
        cache.k.copy_(keys)
        cache.v.copy_(values)
        stacked = native().DecodeStack([layer._fused() for layer in layers]).step(x, cos, sin, cache.k, cache.v, 0, position)
    assert all("_fused_layer" in layer.__dict__ and layer.__dict__["_fused_layer"][1] is not None for layer in layers)
    assert fused.shape == (1, 1, 256) and torch.equal(fused, modules) and torch.equal(stacked, modules)
    assert torch.equal(fused_k, modules_k) and torch.equal(fused_v, modules_v)
    assert torch.equal(cache.k, modules_k) and torch.equal(cache.v, modules_v)
    assert not torch.equal(cache.k, keys)  # the new column was written


def test_a_loop_steps_layers_run_as_one_native_call_until_a_part_is_swapped(tmp_path):
    """A loaded bf16 model decodes each loop step's layers in one DecodeStack call, with the tokens
    of the layer-by-layer path; assigning a part anywhere rebuilds the stack from the current parts,
    and a part without a native decode kernel sends the loop step back to the layers one by one."""
    from lantern.runtime import load
    from lantern.runtime.config import OuroConfig
    from lantern.runtime.kernels import NativeOuro
    from lantern.runtime.model import OuroForCausalLM
    from lantern.runtime.testing import make_random_checkpoint

    shape = OuroConfig(vocab_size=384, hidden_size=256, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=64, max_position_embeddings=256)
    lm = load(make_random_checkpoint(tmp_path / "ouro", shape, seed=4), device="cpu", dtype="bfloat16")
    assert type(lm.model) is NativeOuro
    ids = lm.encode("Ouro loops four times over its layers")

    def decode(mode):
        return [(t.id, t.exit_step) for t in lm.generate(ids, max_new_tokens=6, mode=mode, exit_threshold=0.3)]

    stacked = {mode: decode(mode) for mode in ("fast", "deep")}
    stack = lm.model._stack()
    assert stack is not None and lm.model._stack() is stack  # built once, kept while nothing changes
    lm.model.__class__ = OuroForCausalLM  # the layer-by-layer path (each layer still one native call)
    assert {mode: decode(mode) for mode in ("fast", "deep")} == stacked
    lm.model.__class__ = NativeOuro
    mlp = lm.model.model.layers[1].mlp
    mlp.up_proj = nn.Linear(256, 512, bias=False).to(torch.bfloat16)  # swapped: rebuilt over the new part
    install(mlp)  # (made a GemvLinear, which has a native decode kernel)
    rebuilt = lm.model._stack()
    assert rebuilt is not None and rebuilt is not stack
    assert lm.model.model.layers[1]._fused() is lm.model.model.layers[1].__dict__["_fused_layer"][1]
    mlp.up_proj = nn.Linear(256, 512, bias=True).to(torch.bfloat16)  # a bias: no native kernel, so no stack
    assert lm.model._stack() is None
    assert decode("fast")  # through the layers one by one (how many tokens before EOS depends on the new random part)


def test_a_swapped_part_rebuilds_or_drops_the_fused_layer():
    """The fused layer holds the parts it was built from: swapping a projection for one without a
    native decode kernel sends the block back to its modules."""
    from lantern.runtime.config import OuroConfig
    from lantern.runtime.model import Block

    config = OuroConfig(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=4, head_dim=64)
    block = Block(config).to(torch.bfloat16)
    install(block)
    assert block._fused() is not None
    block.mlp.up_proj = nn.Linear(256, 512, bias=True).to(torch.bfloat16)  # a bias: no native kernel
    assert block._fused() is None


@pytest.mark.parametrize("n", [5632, 37, 70000])  # a decode row; a short tail; a prompt's worth, split among threads
def test_native_swiglu_middle_matches_pytorchs_silu_and_product(n):
    """silu_mul_bf16 rounds as F.silu(g) * u does (silu to bf16, then the product) with its own exp:
    every output within one bf16 step of PyTorch's, nearly all bit for bit; large, tiny and
    negative inputs included (exp over- and underflowing to inf and 0)."""
    generator = torch.Generator().manual_seed(n)
    g = (torch.randn(n, generator=generator) * 4).to(torch.bfloat16)
    g[:6] = torch.tensor([-200.0, -90.0, -1e-30, 0.0, 90.0, 200.0]).to(torch.bfloat16)
    u = torch.randn(n, generator=generator).to(torch.bfloat16)
    got = native().silu_mul_bf16(g, u)
    expected = F.silu(g) * u
    assert got.dtype == torch.bfloat16 and got.shape == expected.shape
    assert bool(((got.float() - expected.float()).abs() <= expected.float().abs() * 2**-7 + 1e-38).all())
    assert float((got == expected).float().mean()) > 0.99
    assert torch.equal(got[:6], expected[:6])


def test_the_profile_splits_a_fused_layer_into_its_parts(tmp_path, monkeypatch):
    """With every layer fused no module hook fires inside it: the products and attention the profile
    reports come from the native layer's own clock, and the norms keep only the rest."""
    from lantern.runtime import load
    from lantern.runtime.config import OuroConfig
    from lantern.runtime.profile import profile_decode
    from lantern.runtime.testing import make_random_checkpoint

    shape = OuroConfig(vocab_size=384, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, head_dim=64, max_position_embeddings=256)
    lm = load(make_random_checkpoint(tmp_path / "ouro", shape, seed=3), device="cpu", dtype="bfloat16")
    called = record_native_calls(monkeypatch)
    result = profile_decode(lm, lm.encode("Ouro loops four times"), new_tokens=4, mode="fast", threshold=0.5)
    assert "DecodeLayer" in called  # the decode steps ran fused
    parts = result["parts"]
    assert parts["matrix-vector products"]["ms"] > 0 and parts["attention"]["ms"] > 0
    assert parts["norms and elementwise"]["ms"] >= 0


def test_a_build_lock_left_by_an_interrupted_compile_is_removed_and_a_fresh_one_kept(tmp_path, capsys):
    from lantern.runtime.kernels import STALE_BUILD_LOCK_S, clear_stale_build_lock

    lock = tmp_path / "lock"
    assert clear_stale_build_lock(tmp_path) is False  # no lock: nothing to do
    lock.touch()
    made = lock.stat().st_mtime
    assert clear_stale_build_lock(tmp_path, now=made + 60) is False and lock.exists()  # a compile may be running
    assert clear_stale_build_lock(tmp_path, now=made + STALE_BUILD_LOCK_S + 1) is True and not lock.exists()
    assert "interrupted compile" in capsys.readouterr().err
