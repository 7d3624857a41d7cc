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
import shutil
import sys
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lantern.runtime.model import Attention, RMSNorm

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

static inline uint16_t bf16_bits(float f) {  // rounded to nearest even, as vcvtneps2bf16 (finite values)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
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

// RMSNorm of bf16 rows as the runtime's RMSNorm computes it: in float32, the row scaled by
// 1 / sqrt(mean(x^2) + eps), rounded to bf16, then times the bf16 weight and rounded again; one
// call instead of eight PyTorch ops (at decode sizes their per-op overhead is the whole cost).
// Only the order of the float32 sum of squares differs from PyTorch's.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void rmsnorm_rows(const uint16_t* x, const uint16_t* w, uint16_t* y, int64_t r0, int64_t r1, int64_t D, float eps) {
  const int64_t body = D / 16 * 16;
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* xr = x + r * D;
    uint16_t* yr = y + r * D;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < body; i += 16) {
      const __m512 v = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(xr + i))), 16));
      acc = _mm512_fmadd_ps(v, v, acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    for (int64_t i = body; i < D; ++i) sum += bf16_value(xr[i]) * bf16_value(xr[i]);
    const float scale = 1.f / std::sqrt(sum / (float)D + eps);
    const __m512 s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < body; i += 16) {
      const __m512 v = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(xr + i))), 16));
      const __m512 wv = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(w + i))), 16));
      const __m512 normed = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(v, s))), 16));
      _mm256_storeu_si256((__m256i*)(yr + i), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(wv, normed)));
    }
    for (int64_t i = body; i < D; ++i) yr[i] = bf16_bits(bf16_value(w[i]) * bf16_value(bf16_bits(bf16_value(xr[i]) * scale)));
  }
}

// x [..., D] bf16 contiguous, weight [D] bf16 -> same shape bf16.
torch::Tensor rmsnorm_bf16(torch::Tensor x, torch::Tensor weight, double eps) {
  const int64_t D = x.size(-1), R = x.numel() / D;
  auto out = torch::empty_like(x);
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  const auto* wp = reinterpret_cast<const uint16_t*>(weight.data_ptr());
  auto* yp = reinterpret_cast<uint16_t*>(out.data_ptr());
  if (R < 8) {
    rmsnorm_rows(xp, wp, yp, 0, R, D, (float)eps);  // decode: one row, no threads to wake
  } else {
    at::parallel_for(0, R, 8, [&](int64_t r0, int64_t r1) { rmsnorm_rows(xp, wp, yp, r0, r1, D, (float)eps); });
  }
  return out;
}

// Softmax attention of a decode step's few query rows over the cached keys and values, in
// float32 as model.few_query_attention computes it (scores of q / sqrt(D) against each key, masked
// positions at -inf, softmax, then the weighted sum of the values), reading bf16 q, k and v where
// they lie (k and v are the cache's own prefix views: rows of D contiguous values) and sharing each
// key-value head among its query heads without copies. One call instead of about ten PyTorch ops.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
torch::Tensor decode_attention_bf16(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor mask) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), D = q.size(3), T = k.size(2), Hkv = k.size(1);
  TORCH_CHECK(D % 16 == 0 && k.stride(3) == 1 && v.stride(3) == 1 && H % Hkv == 0, "decode_attention_bf16: unsupported layout");
  auto out = torch::empty({B, H, S, D}, q.options());
  const auto* qp = reinterpret_cast<const uint16_t*>(q.data_ptr());
  const auto* kp = reinterpret_cast<const uint16_t*>(k.data_ptr());
  const auto* vp = reinterpret_cast<const uint16_t*>(v.data_ptr());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr());
  const bool* mp = mask.numel() ? mask.data_ptr<bool>() : nullptr;  // [B, 1, S, T], contiguous
  const float scale = 1.f / std::sqrt((float)D);
  std::vector<float> qf(D), scores(T), acc(D);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);
      const uint16_t* kb = kp + b * k.stride(0) + g * k.stride(1);
      const uint16_t* vb = vp + b * v.stride(0) + g * v.stride(1);
      for (int64_t s = 0; s < S; ++s) {
        const uint16_t* qr = qp + b * q.stride(0) + h * q.stride(1) + s * q.stride(2);
        for (int64_t d = 0; d < D; ++d) qf[d] = bf16_value(qr[d * q.stride(3)]) * scale;
        float peak = -INFINITY;
        for (int64_t t = 0; t < T; ++t) {
          if (mp && !mp[(b * S + s) * T + t]) { scores[t] = -INFINITY; continue; }
          const uint16_t* kr = kb + t * k.stride(2);
          __m512 dot = _mm512_setzero_ps();
          for (int64_t d = 0; d < D; d += 16)
            dot = _mm512_fmadd_ps(_mm512_loadu_ps(qf.data() + d),
                                  _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(kr + d))), 16)), dot);
          scores[t] = _mm512_reduce_add_ps(dot);
          peak = std::max(peak, scores[t]);
        }
        float total = 0.f;
        for (int64_t t = 0; t < T; ++t) {
          scores[t] = scores[t] == -INFINITY ? 0.f : std::exp(scores[t] - peak);
          total += scores[t];
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t t = 0; t < T; ++t) {
          if (scores[t] == 0.f) continue;
          const __m512 p = _mm512_set1_ps(scores[t] / total);
          const uint16_t* vr = vb + t * v.stride(2);
          for (int64_t d = 0; d < D; d += 16)
            _mm512_storeu_ps(acc.data() + d, _mm512_fmadd_ps(p,
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(vr + d))), 16)),
                _mm512_loadu_ps(acc.data() + d)));
        }
        uint16_t* orow = op + ((b * H + h) * S + s) * D;
        for (int64_t d = 0; d < D; d += 16)
          _mm256_storeu_si256((__m256i*)(orow + d), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(acc.data() + d)));
      }
    }
  return out;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline __m512 widen(const uint16_t* p) {  // 16 bf16 values as float32
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline __m512 round_trip(__m512 f) {  // to bf16 (nearest even) and back to float32
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(f)), 16));
}

// RoPE of bf16 x [B, H, S, D] (any strides, unit stride along D) by the bf16 tables cos, sin
// [B, 1, S, D] (contiguous), rounding as PyTorch's three bf16 ops do: x*cos and rotate_half(x)*sin
// each rounded to bf16, then their sum rounded again. One call instead of six ops.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
torch::Tensor rope_bf16(torch::Tensor x, torch::Tensor cos, torch::Tensor sin) {
  const int64_t B = x.size(0), H = x.size(1), S = x.size(2), D = x.size(3), half = D / 2;
  TORCH_CHECK(D % 32 == 0 && x.stride(3) == 1 && cos.is_contiguous() && sin.is_contiguous(), "rope_bf16: unsupported layout");
  auto out = torch::empty({B, H, S, D}, x.options());
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  const auto* cp = reinterpret_cast<const uint16_t*>(cos.data_ptr());
  const auto* sp = reinterpret_cast<const uint16_t*>(sin.data_ptr());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr());
  const __m512i sign = _mm512_set1_epi32((int)0x80000000);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s) {
        const uint16_t* xr = xp + b * x.stride(0) + h * x.stride(1) + s * x.stride(2);
        const uint16_t* cr = cp + (b * S + s) * D;
        const uint16_t* sr = sp + (b * S + s) * D;
        uint16_t* orow = op + ((b * H + h) * S + s) * D;
        for (int64_t d = 0; d < D; d += 16) {
          // rotate_half(x)[d] = -x[d + half] for d < half, x[d - half] after
          const __m512 other = widen(xr + (d < half ? d + half : d - half));
          const __m512 rotated = d < half ? _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(other), sign)) : other;
          const __m512 sum = _mm512_add_ps(round_trip(_mm512_mul_ps(widen(xr + d), widen(cr + d))),
                                           round_trip(_mm512_mul_ps(rotated, widen(sr + d))));
          _mm256_storeu_si256((__m256i*)(orow + d), (__m256i)_mm512_cvtneps_pbh(sum));
        }
      }
  return out;
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
EXTENSION = "lantern_kernels_v11"
"""The compiled module's name: a new name whenever _SOURCE changes, so no stale build is loaded."""


def _find_ninja() -> None:
    """torch's extension builder runs `ninja` from PATH; a venv's own (the `ninja` package Lantern
    depends on) is not on PATH when `.venv/bin/lantern` runs without the venv activated."""
    if shutil.which("ninja") is None:
        try:
            import ninja

            os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
        except ImportError:
            pass


@functools.lru_cache(maxsize=1)
def native():
    """The compiled extension, or None (no AVX-512 BF16, no compiler, or switched off)."""
    if os.environ.get("LANTERN_NATIVE_KERNELS", "1").lower() in ("0", "false", "no"):
        return None
    if not cpu_has_avx512_bf16():
        return None
    with _building:
        try:
            from torch.utils.cpp_extension import _get_build_directory, load_inline

            _find_ninja()
            if not (Path(_get_build_directory(EXTENSION, False)) / f"{EXTENSION}.so").exists():
                print("Compiling Lantern's native CPU kernels, once for this machine (about a minute)...", file=sys.stderr, flush=True)
            return load_inline(EXTENSION, cpp_sources=_SOURCE, functions=["gemv_bf16", "gemv_int4", "gemv_int8", "dequantize_int4_into", "rmsnorm_bf16", "decode_attention_bf16", "rope_bf16"],
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


class NativeRMSNorm(RMSNorm):
    """RMSNorm whose bf16 CPU rows go through the native kernel (same weight, same numbers up to
    the order of one float32 sum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and self.weight.dtype == torch.bfloat16 and x.is_contiguous():
            return native().rmsnorm_bf16(x, self.weight, self.eps)
        return super().forward(x)


class NativeAttention(Attention):
    """Attention whose decode steps on CPU in bf16 go through the native kernel (same weights; the
    same float32 computation as model.few_query_attention up to summation order)."""

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        if x.dtype == cos.dtype == sin.dtype == torch.bfloat16 and x.shape[2] <= 4 and x.shape[3] % 32 == 0 and x.stride(3) == 1 \
                and cos.is_contiguous() and sin.is_contiguous() and cos.shape == (x.shape[0], 1, x.shape[2], x.shape[3]):
            return native().rope_bf16(x, cos, sin)
        return super().rotate(x, cos, sin)

    def few_query(self, q, k, v, mask) -> torch.Tensor:
        if q.dtype == torch.bfloat16 and k.dtype == torch.bfloat16 and self.head_dim % 16 == 0 and k.stride(3) == 1 and v.stride(3) == 1:
            empty = _NO_MASK if mask is None else mask.expand(q.shape[0], 1, q.shape[2], k.shape[2]).contiguous()
            return native().decode_attention_bf16(q, k, v, empty)
        return super().few_query(q, k, v, mask)


_NO_MASK = torch.zeros(0, dtype=torch.bool)


def install(model: nn.Module) -> int:
    """Swap every bias-free bf16 CPU Linear with more than one output for a GemvLinear over the same
    weight, and every bf16 RMSNorm for a NativeRMSNorm, when the kernels are available; returns how
    many modules were swapped."""
    if native() is None:
        return 0
    norms = [m for m in model.modules() if type(m) is RMSNorm and m.weight.dtype == torch.bfloat16 and m.weight.device.type == "cpu"]
    for norm in norms:
        norm.__class__ = NativeRMSNorm  # same parameters and attributes; only forward differs
    attentions = [m for m in model.modules() if type(m) is Attention]  # install() runs on CPU bf16 models only
    for attention in attentions:
        attention.__class__ = NativeAttention  # only the bf16 decode step differs
    return len(norms) + len(attentions) + _install_gemv(model)


def _install_gemv(model: nn.Module) -> int:
    candidates = []
    for module in model.modules():
        for name, child in module.named_children():
            if type(child) is nn.Linear and child.bias is None and child.out_features > 1 \
                    and child.weight.dtype == torch.bfloat16 and child.weight.device.type == "cpu" and child.weight.is_contiguous():
                candidates.append((module, name, child))
    for parent, name, linear in candidates:
        fast = GemvLinear.__new__(GemvLinear)
        nn.Module.__init__(fast)
        fast.in_features, fast.out_features = linear.in_features, linear.out_features
        fast.weight = linear.weight
        fast.register_parameter("bias", None)
        setattr(parent, name, fast)
    return len(candidates)
