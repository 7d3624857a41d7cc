"""Native matrix-vector kernels for batch-1 decode on CPUs with AVX-512 BF16: bf16 and int4 weights.

Decode multiplies one activation row by every weight matrix once per loop step, so its speed is
the speed at which those products stream the weights from memory. PyTorch's bf16 path for a single
row read them at about a third of the machine's read bandwidth on the development machine (7 GB/s
against 20 GB/s, one thread, shared machine); `gemv_bf16` reads four weight rows at a time with
`vdpbf16ps` (bf16 pairs multiplied and summed into float32 lanes, no conversion pass) and reaches
about three quarters of it. Each output is a float32 sum rounded once to bf16, as PyTorch's is;
only the order of the additions differs. `gemv_int4` does the same over int4 weights in Lantern's
layout (quantize.py), turning each 4-bit code into bf16 with one table lookup per 32 codes, so no
float weight is ever written to memory; `dequantize_int4_into` writes bf16 rows for prompts.
`gemv_int8` quantizes the activation row to int8 per block of 256 columns and multiplies bytes by
bytes with VNNI (`vpdpbusd`), so int8 weights are never widened: an earlier kernel that widened the
codes to float32 was no faster than PyTorch's `_weight_int8pack_mm`. Streaming 460 MB of int8
weights on the 2-core development machine: 37 GB/s against PyTorch's 27 (bf16 kernel: 43).

The C++ source below is compiled once per machine with torch's extension builder (g++ and ninja;
about a minute, cached by torch under ~/.cache/torch_extensions, or TORCH_EXTENSIONS_DIR) the
first time a bf16 model is loaded on a CPU that has AVX-512 BF16. `GemvLinear` swaps in for
nn.Linear (same `weight` parameter, so nothing else changes) and uses the kernel for one input row
in bf16; every other case (prompts, batches, other dtypes, other devices) goes to F.linear. When
the CPU lacks the instructions, no compiler is found, or LANTERN_NATIVE_KERNELS=0, nothing is
swapped, int4 uses PyTorch's kernel, and the model runs exactly as before.

This module knows nothing about models beyond nn.Linear.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <vector>

// y[n] = sum_k w[n, k] * x[k] for rows n0..n1 of a row-major bf16 matrix; float32 sums.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void bf16_rows(const uint16_t* w, const uint16_t* x, float* y, int64_t n0, int64_t n1, int64_t K) {
  const int64_t body = K / 32 * 32;
  const __mmask32 tail = (__mmask32)((1ull << (K - body)) - 1);
  const __m512bh x_tail = (__m512bh)_mm512_maskz_loadu_epi16(tail, x + body);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {  // four rows share each load of x
    const uint16_t* w0 = w + n * K;
    const uint16_t* w1 = w0 + K;
    const uint16_t* w2 = w1 + K;
    const uint16_t* w3 = w2 + K;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int64_t k = 0; k < body; k += 32) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + k);
      a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w0 + k), xv);
      a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(w1 + k), xv);
      a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_loadu_si512(w2 + k), xv);
      a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_loadu_si512(w3 + k), xv);
    }
    if (tail) {
      a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + body), x_tail);
      a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_maskz_loadu_epi16(tail, w1 + body), x_tail);
      a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_maskz_loadu_epi16(tail, w2 + body), x_tail);
      a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_maskz_loadu_epi16(tail, w3 + body), x_tail);
    }
    y[n] = _mm512_reduce_add_ps(a0);
    y[n + 1] = _mm512_reduce_add_ps(a1);
    y[n + 2] = _mm512_reduce_add_ps(a2);
    y[n + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; n < n1; ++n) {
    const uint16_t* w0 = w + n * K;
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t k = 0; k < body; k += 32)
      a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w0 + k), (__m512bh)_mm512_loadu_si512(x + k));
    if (tail) a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + body), x_tail);
    y[n] = _mm512_reduce_add_ps(a0);
  }
}

static inline float bf16_value(uint16_t bits) {
  uint32_t u = (uint32_t)bits << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// int4 weights in Lantern's layout: row n, group g (64 columns) is 32 bytes at codes[n, 32 g ...];
// byte j holds column 64 g + j in its low nibble and column 64 g + 32 + j in its high nibble.
// w = (code - 8) * scale + zero, (scale, zero) = sz[n, g, 0..1] in bf16. Per group the dot product is
// scale * (codes . x_g) + (zero - 8 scale) * sum(x_g): the codes (0..15, exact in bf16) go straight
// into vdpbf16ps through a 16-entry lookup (vpermw), with no float weights ever formed.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void int4_rows(const uint8_t* codes, const uint16_t* sz, const uint16_t* x, const float* xsum, float* y,
                      int64_t n0, int64_t n1, int64_t K) {
  const int64_t G = K / 64;
  alignas(64) uint16_t table_bits[32] = {0};
  for (int i = 0; i < 16; ++i) {
    float f = (float)i;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    table_bits[i] = (uint16_t)(u >> 16);
  }
  const __m512i table = _mm512_load_si512(table_bits);
  const __m512i low4 = _mm512_set1_epi16(0x0F);
  const __m512i high_half = _mm512_set1_epi32((int)0xFFFF0000);
  alignas(64) float scales[16];
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* c = codes + n * (K / 2);
    const uint16_t* p = sz + n * G * 2;
    __m512 acc = _mm512_setzero_ps(), offsets = _mm512_setzero_ps();
    for (int64_t g0 = 0; g0 < G; g0 += 16) {
      // 16 groups' (scale, zero) pairs at once: each 32-bit lane holds scale (low half) and zero
      // (high half) as bf16, i.e. the top halves of their float32s. The offsets
      // (zero - 8 scale) * sum(x_g) are summed as vectors; the scales wait on the stack.
      const int64_t count = std::min<int64_t>(16, G - g0);
      const __mmask16 lanes = (__mmask16)((1u << count) - 1);
      const __m512i pairs = _mm512_maskz_loadu_epi32(lanes, p + 2 * g0);
      const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
      const __m512 zero = _mm512_castsi512_ps(_mm512_and_si512(pairs, high_half));
      const __m512 sums = _mm512_maskz_loadu_ps(lanes, xsum + g0);
      offsets = _mm512_fmadd_ps(_mm512_fnmadd_ps(_mm512_set1_ps(8.f), scale, zero), sums, offsets);
      _mm512_store_ps(scales, scale);
      for (int64_t g = g0; g < g0 + count; ++g) {
        const __m512i b = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(c + g * 32)));
        const __m512bh lo = (__m512bh)_mm512_permutexvar_epi16(_mm512_and_si512(b, low4), table);
        const __m512bh hi = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(b, 4), table);
        __m512 d = _mm512_dpbf16_ps(_mm512_setzero_ps(), lo, (__m512bh)_mm512_loadu_si512(x + g * 64));
        d = _mm512_dpbf16_ps(d, hi, (__m512bh)_mm512_loadu_si512(x + g * 64 + 32));
        acc = _mm512_fmadd_ps(d, _mm512_set1_ps(scales[g - g0]), acc);
      }
    }
    y[n] = _mm512_reduce_add_ps(acc) + _mm512_reduce_add_ps(offsets);
  }
}

// x [K] bf16, codes [N, K/2] uint8, sz [N, K/64, 2] bf16 -> y [N] bf16.
torch::Tensor gemv_int4(torch::Tensor x, torch::Tensor codes, torch::Tensor sz) {
  const int64_t N = codes.size(0), K = x.size(0), G = K / 64;
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  std::vector<float> xsum(G, 0.f);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < 64; ++j) xsum[g] += bf16_value(xp[g * 64 + j]);
  auto sums = torch::empty({N}, x.options().dtype(torch::kFloat));
  float* yp = sums.data_ptr<float>();
  const auto* cp = codes.data_ptr<uint8_t>();
  const auto* sp = reinterpret_cast<const uint16_t*>(sz.data_ptr());
  at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) { int4_rows(cp, sp, xp, xsum.data(), yp, n0, n1, K); });
  return sums.to(torch::kBFloat16);
}

// One group of 64 int4 codes (32 bytes) -> 64 bf16 weights: (code - 8) * scale + zero in float32
// (a product, then a sum: the rounding of the scalar reference `dequantize_int4` in quantize.py),
// rounded to nearest even, 16 weights per step.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void int4_group_to_bf16(const uint8_t* c, float scale, float zero, uint16_t* o) {
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m512 s = _mm512_set1_ps(scale), z = _mm512_set1_ps(zero), eight = _mm512_set1_ps(8.f);
  for (int half = 0; half < 2; ++half) {  // bytes 0..15 and 16..31 of the group
    const __m128i b = _mm_loadu_si128((const __m128i*)(c + 16 * half));
    const __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
    const __m512 wl = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), eight), s), z);
    const __m512 wh = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), eight), s), z);
    _mm256_storeu_si256((__m256i*)(o + 16 * half), (__m256i)_mm512_cvtneps_pbh(wl));       // columns j
    _mm256_storeu_si256((__m256i*)(o + 32 + 16 * half), (__m256i)_mm512_cvtneps_pbh(wh));  // columns 32 + j
  }
}

// The same int4 rows as bf16 weights into out [R, K] (contiguous), for products of many rows (prompts).
torch::Tensor dequantize_int4_into(torch::Tensor codes, torch::Tensor sz, torch::Tensor out) {
  const int64_t R = codes.size(0), K = codes.size(1) * 2, G = K / 64;
  const auto* cp = codes.data_ptr<uint8_t>();
  const auto* sp = reinterpret_cast<const uint16_t*>(sz.data_ptr());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr());
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t g = 0; g < G; ++g)
        int4_group_to_bf16(cp + r * (K / 2) + g * 32, bf16_value(sp[(r * G + g) * 2]), bf16_value(sp[(r * G + g) * 2 + 1]),
                           op + r * K + g * 64);
  });
  return out;
}

// int8 weights (one scale per row) times a bf16 row quantized to int8 per group of 64 columns
// (sx_g = max|x_g| / 127): per group, vpdpbusd multiplies |xq| (unsigned) by the weight codes with
// the sign of xq moved onto them, 64 byte pairs per instruction into 16 int32 sums, which one
// float multiply-add by sx_g brings to the row's float32 total. Two rows share each x load.
// int8 weights (one scale per row) times a bf16 row quantized to int8 per block of 256 columns
// (sx_b = max|x_b| / 127): vpdpbusd multiplies |xq| (unsigned) by the weight codes with the sign
// of xq moved onto them, 64 byte pairs per instruction into 16 int32 sums (at most
// 256 * 127 * 127 per block, far from overflow), and one float multiply-add by sx_b per block
// brings them to the row's float32 total. Four rows share each x load; the next four are
// prefetched meanwhile.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static inline __m512i int8_block(const int8_t* w, const uint8_t* xa, const uint64_t* neg) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  for (int i = 0; i < 4; ++i) {
    __m512i v = _mm512_loadu_si512(w + 64 * i);
    v = _mm512_mask_sub_epi8(v, neg[i], zero, v);
    acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(xa + 64 * i), v);
  }
  return acc;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static void int8_rows(const int8_t* w, const uint8_t* xabs, const uint64_t* xneg, const float* xscale, float* y,
                      int64_t n0, int64_t n1, int64_t K) {
  const int64_t B = K / 256;
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const int8_t* w0 = w + n * K;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int64_t b = 0; b < B; ++b) {
      const uint8_t* xa = xabs + b * 256;
      const uint64_t* neg = xneg + b * 4;
      const __m512 sx = _mm512_set1_ps(xscale[b]);
      const int8_t* p = w0 + b * 256;
      a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(int8_block(p, xa, neg)), sx, a0);
      a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(int8_block(p + K, xa, neg)), sx, a1);
      a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(int8_block(p + 2 * K, xa, neg)), sx, a2);
      a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(int8_block(p + 3 * K, xa, neg)), sx, a3);
    }
    y[n] = _mm512_reduce_add_ps(a0);
    y[n + 1] = _mm512_reduce_add_ps(a1);
    y[n + 2] = _mm512_reduce_add_ps(a2);
    y[n + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; n < n1; ++n) {
    const int8_t* w0 = w + n * K;
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t b = 0; b < B; ++b)
      a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(int8_block(w0 + b * 256, xabs + b * 256, xneg + b * 4)), _mm512_set1_ps(xscale[b]), a0);
    y[n] = _mm512_reduce_add_ps(a0);
  }
}

// x [K] bf16 (K a multiple of 256), codes [N, K] int8, scale [N] float32 -> y [N] bf16.
torch::Tensor gemv_int8(torch::Tensor x, torch::Tensor codes, torch::Tensor scale) {
  const int64_t N = codes.size(0), K = x.size(0), B = K / 256;
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  std::vector<uint8_t> xabs(K);
  std::vector<uint64_t> xneg(K / 64, 0);
  std::vector<float> xscale(B);
  for (int64_t b = 0; b < B; ++b) {  // the row quantized once per call: K values
    float peak = 0.f;
    for (int64_t j = 0; j < 256; ++j) peak = std::max(peak, std::fabs(bf16_value(xp[b * 256 + j])));
    xscale[b] = peak / 127.f;
    const float inverse = peak > 0.f ? 127.f / peak : 0.f;
    for (int64_t j = b * 256; j < (b + 1) * 256; ++j) {
      const int q = (int)std::nearbyint(bf16_value(xp[j]) * inverse);
      xabs[j] = (uint8_t)std::abs(q);
      if (q < 0) xneg[j / 64] |= (uint64_t)1 << (j % 64);
    }
  }
  auto sums = torch::empty({N}, x.options().dtype(torch::kFloat));
  float* yp = sums.data_ptr<float>();
  const auto* cp = codes.data_ptr<int8_t>();
  at::parallel_for(0, (N + 3) / 4, 16, [&](int64_t b0, int64_t b1) {
    int8_rows(cp, xabs.data(), xneg.data(), xscale.data(), yp, b0 * 4, std::min(b1 * 4, N), K);
  });
  return (sums * scale).to(torch::kBFloat16);
}

// x [K] bf16, w [N, K] bf16 (both contiguous) -> y [N] bf16.
torch::Tensor gemv_bf16(torch::Tensor x, torch::Tensor w) {
  const int64_t N = w.size(0), K = w.size(1);
  auto sums = torch::empty({N}, x.options().dtype(torch::kFloat));
  const auto* wp = reinterpret_cast<const uint16_t*>(w.data_ptr());
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  float* yp = sums.data_ptr<float>();
  const int64_t blocks = (N + 3) / 4;
  at::parallel_for(0, blocks, 16, [&](int64_t b0, int64_t b1) {
    bf16_rows(wp, xp, yp, b0 * 4, std::min(b1 * 4, N), K);
  });
  return sums.to(torch::kBFloat16);
}
"""


def cpu_has_avx512_bf16() -> bool:
    if sys.platform != "linux" or torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    try:
        with open("/proc/cpuinfo") as handle:  # every CPU with AVX-512 BF16 has VNNI too; both are used
            return any(line.startswith("flags") and " avx512_bf16" in line and " avx512_vnni" in line for line in handle)
    except OSError:
        return False


_building = threading.Lock()


@functools.lru_cache(maxsize=1)
def native():
    """The compiled extension, or None (no AVX-512 BF16, no compiler, or switched off)."""
    if os.environ.get("LANTERN_NATIVE_KERNELS", "1").lower() in ("0", "false", "no"):
        return None
    if not cpu_has_avx512_bf16():
        return None
    with _building:
        try:
            from torch.utils.cpp_extension import load_inline

            return load_inline("lantern_kernels_v8", cpp_sources=_SOURCE, functions=["gemv_bf16", "gemv_int4", "gemv_int8", "dequantize_int4_into"],
                               extra_cflags=["-O3", "-fopenmp"], extra_ldflags=["-fopenmp"], verbose=False)
        except Exception as exc:  # no compiler, no ninja, an old assembler: run without the kernel
            log.warning("native CPU kernels unavailable (%s: %s); using PyTorch's", type(exc).__name__, str(exc).splitlines()[0][:200])
            return None


def gemv_bf16(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [K] bf16 @ weight [N, K].T -> [N] bf16 with the native kernel (callers check `native()`)."""
    return native().gemv_bf16(x, weight)


def gemv_int4(x: torch.Tensor, codes: torch.Tensor, scales_zeros: torch.Tensor) -> torch.Tensor:
    """x [K] bf16 times int4 weights in Lantern's layout (see quantize.py) -> [N] bf16."""
    return native().gemv_int4(x, codes, scales_zeros)


def gemv_int8(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [K] bf16 (K a multiple of 256) times int8 weights with one float32 scale per row -> [N] bf16.
    x is quantized to int8 per block of 256 (each value within half a step, max|x_b|/254, of its
    own), which lets VNNI multiply bytes directly (callers check `native()`)."""
    return native().gemv_int8(x, codes, scale)


def dequantize_int4_into(codes: torch.Tensor, scales_zeros: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """int4 rows in Lantern's layout -> bf16 into `out` [rows, K] (prompts multiply these with the matrix kernel)."""
    return native().dequantize_int4_into(codes, scales_zeros, out)


class GemvLinear(nn.Linear):
    """nn.Linear whose one-row bf16 CPU products use the native kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.numel() == self.in_features and x.device.type == "cpu" and self.bias is None:
            return gemv_bf16(x.reshape(-1).contiguous(), self.weight).reshape(*x.shape[:-1], self.out_features)
        return F.linear(x, self.weight, self.bias)


def install(model: nn.Module) -> int:
    """Swap every bias-free bf16 CPU Linear with more than one output for a GemvLinear over the same
    weight, when the kernel is available; returns how many were swapped."""
    candidates = []
    for module in model.modules():
        for name, child in module.named_children():
            if type(child) is nn.Linear and child.bias is None and child.out_features > 1 \
                    and child.weight.dtype == torch.bfloat16 and child.weight.device.type == "cpu" and child.weight.is_contiguous():
                candidates.append((module, name, child))
    if not candidates or native() is None:
        return 0
    for parent, name, linear in candidates:
        fast = GemvLinear.__new__(GemvLinear)
        nn.Module.__init__(fast)
        fast.in_features, fast.out_features = linear.in_features, linear.out_features
        fast.weight = linear.weight
        fast.register_parameter("bias", None)
        setattr(parent, name, fast)
    return len(candidates)
