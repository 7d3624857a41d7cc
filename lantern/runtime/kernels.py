"""Native kernels for CPUs with AVX-512 BF16 and VNNI: weight products (bf16, int8, int4), RMSNorm,
RoPE and decode attention.

Decode multiplies one activation row by every weight matrix once per loop step, so its speed is
the speed at which those products stream the weights from memory. PyTorch's bf16 path for a single
row read them at about a third of the machine's read bandwidth on the development machine (7 GB/s
against 20 GB/s, one thread, shared machine); `gemv_bf16` reads four weight rows at a time with
`vdpbf16ps` (bf16 pairs multiplied and summed into float32 lanes, no conversion pass) and reaches
about three quarters of it. Each output is a float32 sum rounded once to bf16, as PyTorch's is;
only the order of the additions differs.

Quantized weights are never widened to floats: the activations are rounded to int8 instead (per
block of 256 columns for int8 weights, per group of 64 for int4, each value within half a step of
its own) and VNNI (`vpdpbusd`) multiplies bytes by bytes, 64 pairs per instruction. `gemv_int8`
serves one row; `matmul_int8` and `matmul_int4` serve prompts (many rows: panels of 32 weight rows
rearranged so that each vector holds 4 codes of 16 rows, against 8 rows of x at a time, as matrix
kernels are built; 1.6-1.8x PyTorch's bf16 matrix kernel), and `matmul_int4` one row too. int4 codes sit in a layout made for this
(quantize.tile_int4): each 32-bit lane of a vector holds codes of a different group, so the groups'
scales are applied 16 at a time, once per 1,024 columns, and a tile of 4 rows with its scales is
one run of bytes read front to back. Streaming 460 MB of int8 weights on the
2-core development machine: 37 GB/s against PyTorch's 27 (bf16 kernel: 43).

At decode sizes the work between the products is small and PyTorch's per-call cost is not: a
layer's dozen module calls and two dozen ops took about a quarter of a millisecond, most of it
dispatch and code evicted from the caches by the weights streaming past. So a decode step of one
layer for one sequence runs as one native call (`DecodeLayer.step`, used by `NativeBlock`): norms,
products, RoPE, the cache write, attention and SwiGLU in C++, in the same order and with the same
roundings as the native modules (NativeRMSNorm, NativeAttention, NativeMLP and the products'
kernels), which the tests check bit for bit; and all layers of a loop step run as one call
(`DecodeStack.step`, used by `NativeOuro.loop_step`), the same layer steps one after another.

The C++ source below is compiled once per machine with torch's extension builder (g++ and ninja;
about a minute, cached by torch under ~/.cache/torch_extensions, or TORCH_EXTENSIONS_DIR) the
first time a bf16 model is loaded on a CPU that has AVX-512 BF16. `GemvLinear` swaps in for
nn.Linear (same `weight` parameter, so nothing else changes) and uses the kernel for one input row
in bf16; every other case (prompts, batches, other dtypes, other devices) goes to F.linear. When
the CPU lacks the instructions, no compiler is found, or LANTERN_NATIVE_KERNELS=0, nothing is
swapped, int8 and int4 use PyTorch's kernels, and the model runs exactly as before.

This module knows the model's module classes (model.py), whose native subclasses it swaps in; it
knows nothing about generation, exit decisions or files.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lantern.runtime.model import MLP, Attention, Block, OuroForCausalLM, RMSNorm

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
#include <chrono>

static inline float bf16_value(uint16_t bits) {
  uint32_t u = (uint32_t)bits << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static inline uint16_t bf16_bits(float f) {  // rounded to nearest even, as PyTorch's conversion; NaN stays NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

// y[n] = sum_k w[n, k] * x[k] for rows n0..n1 of a row-major bf16 matrix: float32 sums, each rounded
// once to bf16 (as PyTorch's kernel rounds them).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void bf16_rows(const uint16_t* w, const uint16_t* x, uint16_t* y, int64_t n0, int64_t n1, int64_t K) {
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
      // The next four rows into L2 meanwhile (streaming 64 MB on 2 threads: 34 GB/s, 27 without).
      _mm_prefetch((const char*)(w0 + 4 * K + k), _MM_HINT_T1);
      _mm_prefetch((const char*)(w1 + 4 * K + k), _MM_HINT_T1);
      _mm_prefetch((const char*)(w2 + 4 * K + k), _MM_HINT_T1);
      _mm_prefetch((const char*)(w3 + 4 * K + k), _MM_HINT_T1);
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
    y[n] = bf16_bits(_mm512_reduce_add_ps(a0));
    y[n + 1] = bf16_bits(_mm512_reduce_add_ps(a1));
    y[n + 2] = bf16_bits(_mm512_reduce_add_ps(a2));
    y[n + 3] = bf16_bits(_mm512_reduce_add_ps(a3));
  }
  for (; n < n1; ++n) {
    const uint16_t* w0 = w + n * K;
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t k = 0; k < body; k += 32)
      a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w0 + k), (__m512bh)_mm512_loadu_si512(x + k));
    if (tail) a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + body), x_tail);
    y[n] = bf16_bits(_mm512_reduce_add_ps(a0));
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline __m512 widen(const uint16_t* p) {  // 16 bf16 values as float32
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}

// e^x for 16 floats: range reduction (e^x = 2^n e^r, |r| <= ln2 / 2) and a degree-6 polynomial,
// relative error about 1e-7; out-of-range x gives inf or 0, -inf gives 0.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline __m512 exp_ps(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln 2 in two parts, so r is exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);  // p * 2^n, to inf or 0 where x is out of range
}

// int8 weights (one scale per row) times a bf16 row quantized to int8 per block of 256 columns
// (sx_b = max|x_b| / 127): vpdpbusd multiplies |xq| (unsigned) by the weight codes with the sign
// of xq moved onto them, 64 byte pairs per instruction into 16 int32 sums (at most
// 256 * 127 * 127 per block, far from overflow), and one float multiply-add by sx_b per block
// brings them to the row's float32 total. The row four rows ahead is prefetched into L2 meanwhile
// (streaming 32 MB on 2 threads: 27 GB/s, 17 fetching into L1).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static inline __m512i int8_block(const int8_t* w, const uint8_t* xa, const uint64_t* neg, int64_t ahead) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  for (int i = 0; i < 4; ++i) {
    _mm_prefetch((const char*)(w + 64 * i + ahead), _MM_HINT_T1);
    __m512i v = _mm512_loadu_si512(w + 64 * i);
    v = _mm512_mask_sub_epi8(v, neg[i], zero, v);
    acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(xa + 64 * i), v);
  }
  return acc;
}

// Rows n0..n1 one after another, each read in address order: the hardware prefetcher follows the
// single stream, where tiles of four rows sharing each load of x (four streams 2-11 KB apart) left
// it behind (a 1.4B int8 layer's decode step 8-12% faster, 0.84-0.87 of the read ceiling against
// 0.76-0.80, paired runs here). Software prefetch still runs four rows ahead into L2, and the row
// scales, a second stream (a line per 16 rows), are fetched ahead with them.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static void int8_rows(const int8_t* w, const uint8_t* xabs, const uint64_t* xneg, const float* xscale, const float* scale,
                      uint16_t* y, int64_t n0, int64_t n1, int64_t K) {
  const int64_t B = K / 256;
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w0 = w + n * K;
    if (n % 16 == 0) _mm_prefetch((const char*)(scale + n + 32), _MM_HINT_T1);
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t b = 0; b < B; ++b)
      a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(int8_block(w0 + b * 256, xabs + b * 256, xneg + b * 4, 4 * K)), _mm512_set1_ps(xscale[b]), a0);
    y[n] = bf16_bits(_mm512_reduce_add_ps(a0) * scale[n]);
  }
}

// One block of 256 bf16 values -> q = x * (127 / max|x|) rounded to nearest even in float32 (what
// std::nearbyint does), 16 int32 per vector; returns the block's step max|x| / 127.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline float int8_block_codes(const uint16_t* xb, __m512i q[16]) {
  __m512 peak = _mm512_setzero_ps();
  for (int i = 0; i < 16; ++i) peak = _mm512_max_ps(peak, _mm512_abs_ps(widen(xb + 16 * i)));
  const float top = _mm512_reduce_max_ps(peak);
  const __m512 inverse = _mm512_set1_ps(top > 0.f ? 127.f / top : 0.f);
  for (int i = 0; i < 16; ++i) q[i] = _mm512_cvtps_epi32(_mm512_mul_ps(widen(xb + 16 * i), inverse));
  return top / 127.f;
}

// One bf16 row -> |q| bytes, sign bits and per-block steps (int8_block_codes).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void int8_row_for_gemv(const uint16_t* x, int64_t K, uint8_t* xabs, uint64_t* xneg, float* xscale) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i q[16];
  for (int64_t b = 0; b < K / 256; ++b) {
    xscale[b] = int8_block_codes(x + b * 256, q);
    for (int i = 0; i < 16; ++i) {
      _mm_storeu_si128((__m128i*)(xabs + b * 256 + 16 * i), _mm512_cvtepi32_epi8(_mm512_abs_epi32(q[i])));
      xneg[(b * 256 + 16 * i) / 64] |= (uint64_t)_mm512_cmplt_epi32_mask(q[i], zero) << ((16 * i) % 64);
    }
  }
}

// One weight matrix of a decode product (kernels for one input row): kind 0 bf16 (w), 1 int8
// (w: codes, a: float32 row scales; each output the float32 sum times the row's scale, rounded
// once), 2 int4 (w: tiles in Lantern's layout, quantize.tile_int4, a: row factors); N rows into y.
struct RowProduct {
  int kind;
  const void *w, *a;
  int64_t N;
  uint16_t* y;
};
static void row_products(const RowProduct* ps, int count, const uint16_t* x, int64_t K);  // below the int4 kernel

torch::Tensor gemv_int8(torch::Tensor x, torch::Tensor codes, torch::Tensor scale) {
  const int64_t N = codes.size(0), K = x.size(0);
  TORCH_CHECK(K % 256 == 0 && codes.size(1) == K && scale.scalar_type() == torch::kFloat, "gemv_int8: unsupported shape");
  auto out = torch::empty({N}, x.options());
  const RowProduct product{1, codes.data_ptr<int8_t>(), scale.data_ptr<float>(), N, reinterpret_cast<uint16_t*>(out.data_ptr())};
  row_products(&product, 1, reinterpret_cast<const uint16_t*>(x.data_ptr()), K);
  return out;
}

// ---- int4 weights times int8 activations with VNNI, one row (decode) -------------------------
// Lantern's int4 layout (quantize.tile_int4): the weight rows in tiles of 4, each tile one
// contiguous run of bytes that a product reads front to back. Within a row, columns are cut into
// superblocks of up to 16 groups of 64 (S groups; only the last may be short), each 8 units of 4S
// bytes; byte 4j + c of unit u holds, for group j of the superblock, column 8u + c in its low
// nibble and column 8u + 4 + c in its high nibble (quantize.pack_int4). One unit split into nibbles
// is thus two vectors of codes (0..15) whose 32-bit lane j belongs to group j: vpdpbusd multiplies
// the codes (unsigned) by the activations (signed int8) and sums each group in its own lane, so the
// per-group scales are applied once per superblock, 16 groups at a time, instead of once per 64
// columns. A tile holds, per superblock, the 8 units of its 4 rows (unit u of row r at (4u + r) 4S
// bytes), then each row's 16 scale codes and 16 zero codes (32 bytes, padded with zeros in a short
// superblock): one stream per thread instead of four rows and their scales read side by side. The
// weights stream 1.43x faster so (one-row products over 24 layers of 1.4B-shaped int4 matrices,
// 0.66 GB, two threads, alternating with the row layout in one process on the development machine:
// 38.1 against 26.5 GB/s, the read ceiling 38.7): one sequential stream is what the memory keeps
// up with; five interleaved ones left the cores waiting.
// rf: [N, 3] float32 per row (step, zero_low, zero_step): a group's scale is code * step and its
// zero zero_low + code * zero_step (quantize.Int4Quantized).
// The activations are quantized per group of 64 (sx = max|x_g| / 127, each value within sx / 2 of
// its own) into the same interleaved order (superblock step i: 4S bytes, byte 4j + c = column
// 64 j + 4 i + c), and per group
//   sum_k w_k x_k = s * sum_k code_k x_k + (zero - 8 s) * sum_k x_k,
// the first sum over the rounded x (exact in int32), the second over x itself (float32).
// A tile is 4 weight rows against one row of x (decode; prompts use the panels below). Its float
// sums, touched once per superblock, live in memory.
// Plain loads where a whole vector is wanted: masked loads, which would do for both, left the
// hardware prefetcher idle on the development machine (AMD; 14 against 23 GB/s streaming codes).
constexpr int64_t INT4_TILE_ROWS = 4;
constexpr int64_t INT4_PREFETCH_BYTES = 4096;  // decode: every line fetched into L2 this far ahead

static inline int64_t int4_tile_bytes(int64_t K) { return INT4_TILE_ROWS * (K / 2 + 32 * ((K / 64 + 15) / 16)); }

__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline __m512i load_bytes(const void* p, bool full, __mmask64 mask) {
  return full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(mask, p);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))
static void int4_tile(const uint8_t* tiles, const float* rf, const int8_t* xq, const float* sx, const float* xsum, uint16_t* y,
                      int64_t n, int64_t K) {
  constexpr int R = INT4_TILE_ROWS;
  const int64_t G = K / 64, SB = (G + 15) / 16;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  alignas(64) float F[R][16];
  for (int r = 0; r < R; ++r) _mm512_store_ps(F[r], _mm512_setzero_ps());
  const uint8_t* p = tiles + (n / R) * int4_tile_bytes(K);
  for (int64_t sb = 0; sb < SB; ++sb) {
    const int64_t S = std::min<int64_t>(16, G - 16 * sb), bytes = 4 * S;
    const bool full = S == 16;
    const __mmask64 mask = full ? ~0ull : ((1ull << bytes) - 1);
    __m512i I[R];
    for (int r = 0; r < R; ++r) I[r] = _mm512_setzero_si512();
    const int8_t* xb = xq + sb * 1024;
    for (int u = 0; u < 8; ++u) {
      __m512i lo[R], hi[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* at = p + (u * R + r) * bytes;
        // The codes stream from memory once: each line fetched into L2 4 KB ahead (the hardware
        // prefetcher alone streams this loop 0.82x as fast, measured here).
        _mm_prefetch((const char*)(at + INT4_PREFETCH_BYTES), _MM_HINT_T1);
        const __m512i v = load_bytes(at, full, mask);
        lo[r] = _mm512_and_si512(v, low4);
        hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      }
      const __m512i xa = load_bytes(xb + (2 * u) * bytes, full, mask);
      for (int r = 0; r < R; ++r) I[r] = _mm512_dpbusd_epi32(I[r], lo[r], xa);
      const __m512i xh = load_bytes(xb + (2 * u + 1) * bytes, full, mask);
      for (int r = 0; r < R; ++r) I[r] = _mm512_dpbusd_epi32(I[r], hi[r], xh);
    }
    p += 8 * R * bytes;  // now the 4 rows' scale and zero codes
    _mm_prefetch((const char*)(p + INT4_PREFETCH_BYTES), _MM_HINT_T1);
    _mm_prefetch((const char*)(p + 64 + INT4_PREFETCH_BYTES), _MM_HINT_T1);
    for (int r = 0; r < R; ++r) {
      const uint8_t* codes = p + 32 * r;
      const float* f = rf + (n + r) * 3;
      const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)codes))), _mm512_set1_ps(f[0]));
      const __m512 z = _mm512_add_ps(_mm512_set1_ps(f[1]),
                                     _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(codes + 16)))), _mm512_set1_ps(f[2])));
      const __m512 o = _mm512_fnmadd_ps(_mm512_set1_ps(8.f), s, z);
      const __m512 acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(I[r]), _mm512_mul_ps(s, _mm512_loadu_ps(sx + sb * 16)), _mm512_load_ps(F[r]));
      _mm512_store_ps(F[r], _mm512_fmadd_ps(o, _mm512_loadu_ps(xsum + sb * 16), acc));
    }
    p += 32 * R;
  }
  for (int r = 0; r < R; ++r) y[n + r] = bf16_bits(_mm512_reduce_add_ps(_mm512_load_ps(F[r])));
}

// One group of 64 bf16 values -> q = x * (127 / max|x|) in float32, rounded to nearest even (as the
// scalar reference does it) and saturated to int8, in column order; returns the group's step
// max|x| / 127 and sets *sum to the sum of the values themselves.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline float int4_group_codes(const uint16_t* xg, int8_t* q, float* sum) {
  __m512 v[4];
  __m512 peak = _mm512_setzero_ps(), total = _mm512_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = widen(xg + 16 * i);
    peak = _mm512_max_ps(peak, _mm512_abs_ps(v[i]));
    total = _mm512_add_ps(total, v[i]);
  }
  const float top = _mm512_reduce_max_ps(peak);
  const __m512 inverse = _mm512_set1_ps(top > 0.f ? 127.f / top : 0.f);
  for (int i = 0; i < 4; ++i) _mm_storeu_si128((__m128i*)(q + 16 * i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v[i], inverse))));
  *sum = _mm512_reduce_add_ps(total);
  return top / 127.f;
}

// One bf16 row (decode) -> int8 per group of 64 in the interleaved order, with steps and sums.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void int4_row_for_decode(const uint16_t* x, int64_t K, int8_t* xq, float* sx, float* xsum) {
  const int64_t G = K / 64;
  alignas(16) int8_t q[64];
  for (int64_t g = 0; g < G; ++g) {
    const int64_t sb = g / 16, j = g % 16, S = std::min<int64_t>(16, G - 16 * sb);
    sx[g] = int4_group_codes(x + g * 64, q, xsum + g);
    int8_t* base = xq + sb * 1024 + 4 * j;
    for (int s = 0; s < 16; ++s) std::memcpy(base + s * 4 * S, q + 4 * s, 4);  // step s: columns 4 s .. 4 s + 3 of the group
  }
}

// y_i = W_i x for every product of the list (x [K] bf16, one input row: decode). x is rounded to
// int8 once per precision that needs it, then one parallel region shares out the blocks of 4 rows
// of all the products together: q, k and v (or gate and up) cost one wake-up of the threads and one
// uneven finish instead of three (a 1.4B layer step 0.2-1.3% faster in int4, 1.2% in int8, paired
// runs here). Each output row is computed the same whatever the split, so results never depend on it.
static void row_products(const RowProduct* ps, int count, const uint16_t* x, int64_t K) {
  TORCH_CHECK(count >= 1 && count <= 8, "row_products: 1 to 8 products");
  const int64_t SB = (K / 64 + 15) / 16;
  thread_local std::vector<uint8_t> xabs;
  thread_local std::vector<uint64_t> xneg;
  thread_local std::vector<float> xscale, sx, xs;
  thread_local std::vector<int8_t> xq;
  bool int8 = false, int4 = false;
  int64_t first[8], blocks[8], total = 0;
  for (int i = 0; i < count; ++i) {
    int8 |= ps[i].kind == 1;
    int4 |= ps[i].kind == 2;
    first[i] = total;
    blocks[i] = (ps[i].N + 3) / 4;
    total += blocks[i];
  }
  if (int8) {
    xabs.resize(K);
    xneg.assign(K / 64, 0);
    xscale.resize(K / 256);
    int8_row_for_gemv(x, K, xabs.data(), xneg.data(), xscale.data());
  }
  if (int4) {
    xq.resize(K);
    sx.assign(SB * 16, 0.f);  // a short last superblock reads zeros past its groups
    xs.assign(SB * 16, 0.f);
    int4_row_for_decode(x, K, xq.data(), sx.data(), xs.data());
  }
  // The rounded row by pointer: inside the region, the thread_local names would be each thread's own.
  const uint8_t* xa = xabs.data();
  const uint64_t* xn = xneg.data();
  const float *xsc = xscale.data(), *gsx = sx.data(), *gxs = xs.data();
  const int8_t* gxq = xq.data();
  at::parallel_for(0, total, 16, [&](int64_t b0, int64_t b1) {
    for (int i = 0; i < count; ++i) {
      const int64_t lo = std::max(b0, first[i]) - first[i], hi = std::min(b1, first[i] + blocks[i]) - first[i];
      if (lo >= hi) continue;
      const RowProduct& p = ps[i];
      const int64_t n0 = lo * 4, n1 = std::min(hi * 4, p.N);
      if (p.kind == 0) bf16_rows(static_cast<const uint16_t*>(p.w), x, p.y, n0, n1, K);
      else if (p.kind == 1) int8_rows(static_cast<const int8_t*>(p.w), xa, xn, xsc, static_cast<const float*>(p.a), p.y, n0, n1, K);
      else
        for (int64_t n = n0; n < n1; n += INT4_TILE_ROWS)  // int4 rows come in whole tiles (the callers check)
          int4_tile(static_cast<const uint8_t*>(p.w), static_cast<const float*>(p.a), gxq, gsx, gxs, p.y, n, K);
    }
  });
}

// ---- int8 weights times int8 activations with VNNI, for prompts --------------------------------
// The rows of x quantized per block of 256 as in gemv_int8, but stored as q + 128 (unsigned) so no
// sign is moved onto the weights: sum_k (q_k + 128) w_k = sum_k q_k w_k + 128 sum_k w_k, the last
// sum per weight row and block computed once per weight (block_sums [N, K/256] int32).
//
// Outer-product form, as matrix kernels are built: a panel of 32 weight rows is rearranged once
// (per call) so that one vector holds 4 consecutive codes of each of 16 rows, and 4 bytes of one row
// of x, broadcast to every lane, multiply two such vectors into 32 sums at a time. A micro-kernel
// keeps 8 rows of x by 32 weight rows in 16 accumulators (with the two weight vectors and the
// broadcast: 19 of the 32 registers) and converts them to float once per block of 256 columns; the
// rows of x are laid out the same way (8 rows, 4 bytes each, per step of 4 columns), so every load
// is one sequential stream. The earlier dot-product tile (4 weight rows by 4 rows of x, each sum a
// vector reduced at the end) loaded one vector per 2 multiplies and converted 16 sums per 64: about
// as fast as PyTorch's bf16 matrix kernel here (0.93-1.18x); this one 1.64x at 128 rows and 1.74x
// at 512 (the 1.4B layer shapes, 2 threads, alternating with F.linear in bf16).
constexpr int PANEL_ROWS = 32;  // weight rows per panel: two vectors of 16
constexpr int X_TILE_ROWS = 8;  // rows of x per micro-kernel call

// vpdpbusd written as asm: with the intrinsic, GCC 12 kept most of the micro-kernel's accumulators
// on the stack (a store and a load around every multiply, about 3x slower).
__attribute__((target("avx512f")))
static inline __m512i dot_bytes(__m512i acc, __m512i unsigned_bytes, __m512i signed_bytes) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(unsigned_bytes), "v"(signed_bytes));
  return acc;
}

// Rows of x for the panels: rows m of tiles t0..t1 rounded by quantize(m, bytes) (K bytes in column
// order) and laid out as xp [tile][K/4][X_TILE_ROWS][4]: per step of 4 columns, the tile's 8 rows.
// Rows past M (a last tile's padding) are `pad` bytes with step 0: their outputs are not stored.
template <typename Quantize>
static void prompt_tiles(int64_t M, int64_t K, int64_t t0, int64_t t1, uint8_t pad, uint8_t* xp, Quantize quantize) {
  std::vector<uint8_t> row(K);
  for (int64_t t = t0; t < t1; ++t)
    for (int r = 0; r < X_TILE_ROWS; ++r) {
      const int64_t m = t * X_TILE_ROWS + r;
      if (m < M) quantize(m, row.data());
      else std::memset(row.data(), pad, K);
      uint8_t* tile = xp + t * K * X_TILE_ROWS + 4 * r;
      for (int64_t s = 0; s < K / 4; ++s) std::memcpy(tile + s * X_TILE_ROWS * 4, row.data() + 4 * s, 4);
    }
}

// One bf16 row -> q + 128 per block of 256 (int8_block_codes, as gemv_int8 rounds it) and the
// blocks' steps sx[K/256].
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void int8_prompt_row(const uint16_t* x, int64_t K, uint8_t* codes, float* sx) {
  const __m512i offset = _mm512_set1_epi32(128);
  __m512i q[16];
  for (int64_t b = 0; b < K / 256; ++b) {
    sx[b] = int8_block_codes(x + b * 256, q);
    for (int i = 0; i < 16; ++i) _mm_storeu_si128((__m128i*)(codes + b * 256 + 16 * i), _mm512_cvtepi32_epi8(_mm512_add_epi32(q[i], offset)));
  }
}

// 16 vectors of 16 dwords, transposed in place (r[i] lane j <- r[j] lane i).
__attribute__((target("avx512f")))
static inline void transpose_16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + c], 128-bit lane L: column 4L + c of rows 4i..4i+3
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {  // then the 4 x 4 blocks of 128-bit lanes
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
}

// Weight rows n0..n0+31 (zeros past N) -> panel [K/4][32] dwords (4 codes of one row each) and
// corrections [K/256][32] = 128 * block sums.
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void int8_panel(const int8_t* w, const int32_t* block_sums, int64_t n0, int64_t N, int64_t K, int32_t* panel, int32_t* corrections) {
  const int64_t B = K / 256;
  for (int half = 0; half < 2; ++half)
    for (int64_t c = 0; c < K / 64; ++c) {
      __m512i r[16];
      for (int j = 0; j < 16; ++j) {
        const int64_t n = n0 + 16 * half + j;
        r[j] = n < N ? _mm512_loadu_si512(w + n * K + 64 * c) : _mm512_setzero_si512();
      }
      transpose_16x16(r);
      for (int s = 0; s < 16; ++s) _mm512_storeu_si512(panel + (16 * c + s) * PANEL_ROWS + 16 * half, r[s]);
    }
  for (int64_t b = 0; b < B; ++b)
    for (int j = 0; j < PANEL_ROWS; ++j) corrections[b * PANEL_ROWS + j] = n0 + j < N ? 128 * block_sums[(n0 + j) * B + b] : 0;
}

// One block (64 steps of 4 columns) of 8 rows of x against a panel: sums [8][32] int32.
#define INT8_X_ROWS(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define INT8_ZERO(r) __m512i a##r##_0 = _mm512_setzero_si512(), a##r##_1 = a##r##_0;
#define INT8_STEP(r) { const __m512i xb = _mm512_set1_epi32(xs[r]); a##r##_0 = dot_bytes(a##r##_0, xb, w0); a##r##_1 = dot_bytes(a##r##_1, xb, w1); }
#define INT8_STORE(r) _mm512_store_si512(sums + 32 * r, a##r##_0); _mm512_store_si512(sums + 32 * r + 16, a##r##_1);
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), noinline))
static void int8_panel_block(const int32_t* panel, const uint8_t* xtile, int32_t* sums) {
  INT8_X_ROWS(INT8_ZERO)
  for (int s = 0; s < 64; ++s) {
    const __m512i w0 = _mm512_loadu_si512(panel + s * PANEL_ROWS), w1 = _mm512_loadu_si512(panel + s * PANEL_ROWS + 16);
    const int32_t* xs = reinterpret_cast<const int32_t*>(xtile + s * X_TILE_ROWS * 4);
    INT8_X_ROWS(INT8_STEP)
  }
  INT8_X_ROWS(INT8_STORE)
}

// One tile of x (8 rows from m0) against a panel (32 weight rows from n0): each block's sums, less
// the +128 correction (exact in int32), times the row's step, added in float32; at the end times
// the weight rows' scales and rounded once to bf16.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))
static void int8_panel_tile(const int32_t* panel, const int32_t* corrections, const uint8_t* xtile, const float* sx, const float* scale,
                            uint16_t* y, int64_t m0, int64_t M, int64_t n0, int64_t N, int64_t K) {
  const int64_t B = K / 256;
  alignas(64) float total[X_TILE_ROWS][PANEL_ROWS] = {};
  alignas(64) int32_t sums[X_TILE_ROWS][PANEL_ROWS];
  for (int64_t b = 0; b < B; ++b) {
    int8_panel_block(panel + b * 64 * PANEL_ROWS, xtile + b * 64 * X_TILE_ROWS * 4, &sums[0][0]);
    for (int r = 0; r < X_TILE_ROWS; ++r) {
      const __m512 step = _mm512_set1_ps(sx[(m0 + r) * B + b]);
      for (int h = 0; h < 2; ++h) {
        const __m512i exact = _mm512_sub_epi32(_mm512_load_si512(&sums[r][16 * h]), _mm512_loadu_si512(corrections + b * PANEL_ROWS + 16 * h));
        _mm512_store_ps(&total[r][16 * h], _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), step, _mm512_load_ps(&total[r][16 * h])));
      }
    }
  }
  for (int r = 0; r < X_TILE_ROWS && m0 + r < M; ++r)
    for (int h = 0; h < 2 && n0 + 16 * h < N; ++h) {
      const int64_t n = n0 + 16 * h;
      const __mmask16 valid = N - n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - n)) - 1);
      const __m512 out = _mm512_mul_ps(_mm512_load_ps(&total[r][16 * h]), _mm512_maskz_loadu_ps(valid, scale + n));
      _mm256_mask_storeu_epi16(y + (m0 + r) * N + n, valid, (__m256i)_mm512_cvtneps_pbh(out));
    }
}

// The panels are compute-bound, but rearranging one waits for its rows from memory: the next
// panel's rows are fetched into L2 meanwhile, one slice per tile of x.
static inline void prefetch_slice(const void* base, int64_t bytes, int64_t part, int64_t parts) {
  const int64_t lines = (bytes + 63) / 64, per = (lines + parts - 1) / parts;
  const char* p = static_cast<const char*>(base);
  for (int64_t l = part * per; l < std::min(lines, (part + 1) * per); ++l) _mm_prefetch(p + 64 * l, _MM_HINT_T1);
}

// x [M, K] bf16 (K a multiple of 256), codes [N, K] int8, scale [N] float32, block_sums [N, K/256] int32 -> [M, N] bf16.
torch::Tensor matmul_int8(torch::Tensor x, torch::Tensor codes, torch::Tensor scale, torch::Tensor block_sums) {
  const int64_t M = x.size(0), K = x.size(1), N = codes.size(0), B = K / 256;
  TORCH_CHECK(K % 256 == 0 && x.is_contiguous() && codes.is_contiguous() && codes.size(1) == K && block_sums.size(1) == B,
              "matmul_int8: unsupported shape");
  const int64_t tiles = (M + X_TILE_ROWS - 1) / X_TILE_ROWS, panels = (N + PANEL_ROWS - 1) / PANEL_ROWS;
  auto xp = torch::empty({tiles * X_TILE_ROWS * K}, x.options().dtype(torch::kUInt8));
  auto sx = torch::empty({tiles * X_TILE_ROWS * B}, x.options().dtype(torch::kFloat));
  const auto* xin = reinterpret_cast<const uint16_t*>(x.data_ptr());
  uint8_t* xpp = xp.data_ptr<uint8_t>();
  float* sxp = sx.data_ptr<float>();
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    prompt_tiles(M, K, t0, t1, 128, xpp, [&](int64_t m, uint8_t* q) { int8_prompt_row(xin + m * K, K, q, sxp + m * B); });
  });
  for (int64_t m = M; m < tiles * X_TILE_ROWS; ++m)
    for (int64_t b = 0; b < B; ++b) sxp[m * B + b] = 0.f;
  auto out = torch::empty({M, N}, x.options());  // bf16, each output rounded once
  const auto* wp = codes.data_ptr<int8_t>();
  const int32_t* bs = block_sums.data_ptr<int32_t>();
  const float* scp = scale.data_ptr<float>();
  auto* yp = reinterpret_cast<uint16_t*>(out.data_ptr());
  at::parallel_for(0, panels, 1, [&](int64_t p0, int64_t p1) {
    std::vector<int32_t> panel(K / 4 * PANEL_ROWS), corrections(B * PANEL_ROWS);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * PANEL_ROWS, next = std::min<int64_t>(PANEL_ROWS, N - n0 - PANEL_ROWS);  // rows of the next panel
      int8_panel(wp, bs, n0, N, K, panel.data(), corrections.data());
      for (int64_t t = 0; t < tiles; ++t) {
        if (next > 0) prefetch_slice(wp + (n0 + PANEL_ROWS) * K, next * K, t, tiles);
        int8_panel_tile(panel.data(), corrections.data(), xpp + t * K * X_TILE_ROWS, sxp, scp, yp, t * X_TILE_ROWS, M, n0, N, K);
      }
    }
  });
  return out;
}

// ---- int4 prompts: the same outer-product form --------------------------------------------------
// A panel of 32 weight rows is unpacked from its 8 tiles into the layout of the int8 panels (4 codes
// of one row per 32-bit lane, 0..15 as unsigned bytes), group by group: the nibbles of one unit of
// 16 rows, transposed, are the 16 rows' codes for 4 consecutive columns of each group of the
// superblock, so a group's 16 steps of 4 columns are natural column order and x is laid out as for
// int8 (8 rows, 4 signed bytes each, per step). Per group the 8 x 32 integer sums go to float with
// the group's scales as in the tile kernel: scale * sx_g * sum(code * xq) + (zero - 8 scale) * sum(x).
// A group is only 16 steps, so the conversion costs more than int8's: 1.63-1.66x PyTorch's bf16
// matrix kernel at 128 and 512 rows (the tile kernel, 4 weight rows by 3 rows of x: 1.04-1.18x),
// against int8's 1.77-1.81x (1.4B layer shapes, 2 threads, alternating in one process).

// One bf16 row -> int8 per group of 64 in column order (int4_group_codes, as decode rounds it), the
// groups' steps sx[K/64] and the sums of the row's own values xsum[K/64].
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void int4_prompt_row(const uint16_t* x, int64_t K, int8_t* q, float* sx, float* xsum) {
  for (int64_t g = 0; g < K / 64; ++g) sx[g] = int4_group_codes(x + g * 64, q + g * 64, xsum + g);
}

// Weight rows n0..n0+31 (zeros past N; N a multiple of 16) from their tiles -> panel [K/4][32] dwords
// of codes, and per group the 32 rows' scales and offsets zero - 8 scale: factors [K/64][2][32].
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void int4_panel(const uint8_t* tiles, const float* rf, int64_t n0, int64_t N, int64_t K, int32_t* panel, float* factors) {
  const int64_t G = K / 64, SB = (G + 15) / 16, tile_bytes = int4_tile_bytes(K);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int half = 0; half < 2; ++half) {
    const int64_t rows = n0 + 16 * half;  // first row of this half: 4 tiles of 4 rows
    for (int64_t sb = 0, at = 0; sb < SB; ++sb) {
      const int64_t S = std::min<int64_t>(16, G - 16 * sb), bytes = 4 * S;
      const __mmask64 mask = S == 16 ? ~0ull : ((1ull << bytes) - 1);
      for (int u = 0; u < 8; ++u) {
        __m512i lo[16], hi[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t n = rows + j;
          const __m512i v = n < N ? load_bytes(tiles + (n / INT4_TILE_ROWS) * tile_bytes + at + (u * INT4_TILE_ROWS + n % INT4_TILE_ROWS) * bytes, S == 16, mask) : _mm512_setzero_si512();
          lo[j] = _mm512_and_si512(v, low4);
          hi[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        }
        transpose_16x16(lo);  // lo[g]: group g's columns 8u .. 8u + 3 for the 16 rows
        transpose_16x16(hi);  // and 8u + 4 .. 8u + 7
        for (int g = 0; g < S; ++g) {
          int32_t* step = panel + ((16 * sb + g) * 16 + 2 * u) * PANEL_ROWS + 16 * half;
          _mm512_storeu_si512(step, lo[g]);
          _mm512_storeu_si512(step + PANEL_ROWS, hi[g]);
        }
      }
      at += 8 * INT4_TILE_ROWS * bytes;  // the tile's units; then each row's 16 scale and 16 zero codes
      for (int j = 0; j < 16; ++j) {
        const int64_t n = rows + j;
        if (n >= N) {
          for (int g = 0; g < S; ++g) factors[(16 * sb + g) * 2 * PANEL_ROWS + 16 * half + j] = factors[((16 * sb + g) * 2 + 1) * PANEL_ROWS + 16 * half + j] = 0.f;
          continue;
        }
        const uint8_t* codes = tiles + (n / INT4_TILE_ROWS) * tile_bytes + at + 32 * (n % INT4_TILE_ROWS);
        const float* f = rf + n * 3;
        const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)codes))), _mm512_set1_ps(f[0]));
        const __m512 z = _mm512_add_ps(_mm512_set1_ps(f[1]),
                                       _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(codes + 16)))), _mm512_set1_ps(f[2])));
        alignas(64) float sv[16], ov[16];
        _mm512_store_ps(sv, s);
        _mm512_store_ps(ov, _mm512_fnmadd_ps(_mm512_set1_ps(8.f), s, z));
        for (int g = 0; g < S; ++g) {
          factors[(16 * sb + g) * 2 * PANEL_ROWS + 16 * half + j] = sv[g];
          factors[((16 * sb + g) * 2 + 1) * PANEL_ROWS + 16 * half + j] = ov[g];
        }
      }
      at += INT4_TILE_ROWS * 32;
    }
  }
}

// One tile of x (8 rows from m0) against an int4 panel (32 rows from n0), group by group; the sums
// of a group in registers, the float totals in memory (touched once per group).
#define INT4_STEP(r) { const __m512i xb = _mm512_set1_epi32(xs[r]); a##r##_0 = dot_bytes(a##r##_0, w0, xb); a##r##_1 = dot_bytes(a##r##_1, w1, xb); }
#define INT4_ADD(r) { \
    const __m512 step = _mm512_set1_ps(sx[(m0 + r) * G + g]), xtotal = _mm512_set1_ps(xsum[(m0 + r) * G + g]); \
    _mm512_store_ps(total[r], _mm512_fmadd_ps(o0, xtotal, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a##r##_0), _mm512_mul_ps(s0, step), _mm512_load_ps(total[r])))); \
    _mm512_store_ps(total[r] + 16, _mm512_fmadd_ps(o1, xtotal, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a##r##_1), _mm512_mul_ps(s1, step), _mm512_load_ps(total[r] + 16)))); }
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))
static void int4_panel_tile(const int32_t* panel, const float* factors, const int8_t* xtile, const float* sx, const float* xsum,
                            uint16_t* y, int64_t m0, int64_t M, int64_t n0, int64_t N, int64_t K) {
  const int64_t G = K / 64;
  alignas(64) float total[X_TILE_ROWS][PANEL_ROWS] = {};
  for (int64_t g = 0; g < G; ++g) {
    INT8_X_ROWS(INT8_ZERO)
    const int32_t* pg = panel + g * 16 * PANEL_ROWS;
    const int8_t* xg = xtile + g * 16 * X_TILE_ROWS * 4;
    for (int s = 0; s < 16; ++s) {
      const __m512i w0 = _mm512_loadu_si512(pg + s * PANEL_ROWS), w1 = _mm512_loadu_si512(pg + s * PANEL_ROWS + 16);
      const int32_t* xs = reinterpret_cast<const int32_t*>(xg + s * X_TILE_ROWS * 4);
      INT8_X_ROWS(INT4_STEP)
    }
    const float* f = factors + g * 2 * PANEL_ROWS;
    const __m512 s0 = _mm512_loadu_ps(f), s1 = _mm512_loadu_ps(f + 16), o0 = _mm512_loadu_ps(f + PANEL_ROWS), o1 = _mm512_loadu_ps(f + PANEL_ROWS + 16);
    INT8_X_ROWS(INT4_ADD)
  }
  for (int r = 0; r < X_TILE_ROWS && m0 + r < M; ++r)
    for (int h = 0; h < 2 && n0 + 16 * h < N; ++h)  // N is a multiple of 16
      _mm256_storeu_si256((__m256i*)(y + (m0 + r) * N + n0 + 16 * h), (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(&total[r][16 * h])));
}

// x [M, K] bf16, tiles [N/4, int4_tile_bytes(K)] uint8 (quantize.tile_int4), rf [N, 3] float32 -> [M, N] bf16.
// One row: the tile kernel, streaming the tiles once (decode); more: the panels above.
torch::Tensor matmul_int4(torch::Tensor x, torch::Tensor tiles, torch::Tensor rf) {
  const int64_t M = x.size(0), K = x.size(1), N = rf.size(0), G = K / 64;
  TORCH_CHECK(K % 64 == 0 && N % 16 == 0 && x.is_contiguous() && tiles.is_contiguous() && tiles.scalar_type() == torch::kUInt8
              && tiles.dim() == 2 && tiles.size(0) == N / INT4_TILE_ROWS && tiles.size(1) == int4_tile_bytes(K) && rf.is_contiguous()
              && rf.scalar_type() == torch::kFloat && rf.numel() == N * 3, "matmul_int4: unsupported shape");
  auto out = torch::empty({M, N}, x.options());  // bf16, each output rounded once
  const auto* xin = reinterpret_cast<const uint16_t*>(x.data_ptr());
  const auto* cp = tiles.data_ptr<uint8_t>();
  const auto* fp = rf.data_ptr<float>();
  auto* yp = reinterpret_cast<uint16_t*>(out.data_ptr());
  if (M == 1) {
    const RowProduct product{2, cp, fp, N, yp};
    row_products(&product, 1, xin, K);
    return out;
  }
  const int64_t tiles_x = (M + X_TILE_ROWS - 1) / X_TILE_ROWS, panels = (N + PANEL_ROWS - 1) / PANEL_ROWS;
  auto xp = torch::empty({tiles_x * X_TILE_ROWS * K}, x.options().dtype(torch::kInt8));
  auto sx = torch::empty({tiles_x * X_TILE_ROWS * G}, x.options().dtype(torch::kFloat));
  auto xs = torch::empty({tiles_x * X_TILE_ROWS * G}, x.options().dtype(torch::kFloat));
  int8_t* xpp = xp.data_ptr<int8_t>();
  float *sxp = sx.data_ptr<float>(), *xsp = xs.data_ptr<float>();
  at::parallel_for(0, tiles_x, 1, [&](int64_t t0, int64_t t1) {
    prompt_tiles(M, K, t0, t1, 0, reinterpret_cast<uint8_t*>(xpp), [&](int64_t m, uint8_t* q) {
      int4_prompt_row(xin + m * K, K, reinterpret_cast<int8_t*>(q), sxp + m * G, xsp + m * G);
    });
  });
  for (int64_t m = M; m < tiles_x * X_TILE_ROWS; ++m)
    for (int64_t g = 0; g < G; ++g) sxp[m * G + g] = xsp[m * G + g] = 0.f;
  const int64_t tile_bytes = int4_tile_bytes(K);
  at::parallel_for(0, panels, 1, [&](int64_t p0, int64_t p1) {
    std::vector<int32_t> panel(K / 4 * PANEL_ROWS);
    std::vector<float> factors(G * 2 * PANEL_ROWS);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * PANEL_ROWS, next = std::min<int64_t>(PANEL_ROWS, N - n0 - PANEL_ROWS);  // rows of the next panel
      int4_panel(cp, fp, n0, N, K, panel.data(), factors.data());
      for (int64_t t = 0; t < tiles_x; ++t) {
        if (next > 0) prefetch_slice(cp + (n0 + PANEL_ROWS) / INT4_TILE_ROWS * tile_bytes, next / INT4_TILE_ROWS * tile_bytes, t, tiles_x);
        int4_panel_tile(panel.data(), factors.data(), xpp + t * K * X_TILE_ROWS, sxp, xsp, yp, t * X_TILE_ROWS, M, n0, N, K);
      }
    }
  });
  return out;
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
// key-value head among its query heads without copies. One call instead of about ten PyTorch ops;
// the heads are shared among the threads (the cache is read from memory, and two threads read it
// faster than one).
// One query row: qr (D values, q_step apart), keys and values at kb / vb (T rows, k_row / v_row
// apart), mask_row (T flags, or null: attend to all) -> orow (D bf16). qf, scores: scratch (D and
// T + 16 floats). The exponentials 16 at a time (exp_ps); the output row is summed in registers.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void attend_row(const uint16_t* qr, int64_t q_step, const uint16_t* kb, int64_t k_row, const uint16_t* vb, int64_t v_row,
                       const bool* mask_row, int64_t T, int64_t D, uint16_t* orow, float* qf, float* scores) {
  const float scale = 1.f / std::sqrt((float)D);
  for (int64_t d = 0; d < D; ++d) qf[d] = bf16_value(qr[d * q_step]) * scale;
  // The first sixteen keys and values, which no later step fetches ahead (with sixteen ahead instead
  // of eight: a 1.4B layer's decode step 1.5-2% faster, paired runs here).
  for (int64_t t0 = 0; t0 < std::min<int64_t>(T, 16); ++t0)
    for (int64_t d = 0; d < D; d += 32) {
      _mm_prefetch((const char*)(kb + t0 * k_row + d), _MM_HINT_T0);
      _mm_prefetch((const char*)(vb + t0 * v_row + d), _MM_HINT_T1);
    }
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) {  // four keys at a time: four independent chains of additions
    const uint16_t* kr = kb + t * k_row;
    for (int i = 0; i < 4; ++i)  // the cache is read from memory once per token: fetch sixteen keys ahead
      for (int64_t d = 0; d < D; d += 32) _mm_prefetch((const char*)(kr + (16 + i) * k_row + d), _MM_HINT_T0);
    __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps(), d2 = _mm512_setzero_ps(), d3 = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
      const __m512 qv = _mm512_loadu_ps(qf + d);
      d0 = _mm512_fmadd_ps(qv, widen(kr + d), d0);
      d1 = _mm512_fmadd_ps(qv, widen(kr + k_row + d), d1);
      d2 = _mm512_fmadd_ps(qv, widen(kr + 2 * k_row + d), d2);
      d3 = _mm512_fmadd_ps(qv, widen(kr + 3 * k_row + d), d3);
    }
    scores[t] = _mm512_reduce_add_ps(d0);
    scores[t + 1] = _mm512_reduce_add_ps(d1);
    scores[t + 2] = _mm512_reduce_add_ps(d2);
    scores[t + 3] = _mm512_reduce_add_ps(d3);
  }
  for (; t < T; ++t) {
    const uint16_t* kr = kb + t * k_row;
    __m512 dot = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) dot = _mm512_fmadd_ps(_mm512_loadu_ps(qf + d), widen(kr + d), dot);
    scores[t] = _mm512_reduce_add_ps(dot);
  }
  float peak = -INFINITY;
  for (t = 0; t < T; ++t) {
    if (mask_row && !mask_row[t]) scores[t] = -INFINITY;
    peak = std::max(peak, scores[t]);
  }
  const __m512 top = _mm512_set1_ps(peak);
  __m512 sums = _mm512_setzero_ps();
  for (t = 0; t < T; t += 16) {  // exp(-inf) is 0: masked positions drop out
    const __mmask16 live = T - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (T - t)) - 1);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, scores + t), top));
    _mm512_mask_storeu_ps(scores + t, live, e);
    sums = _mm512_add_ps(sums, _mm512_maskz_mov_ps(live, e));
  }
  const float inverse = 1.f / _mm512_reduce_add_ps(sums);
  constexpr int MAX_VECTORS = 16;  // head widths up to 256 summed in registers
  if (D <= 16 * MAX_VECTORS) {
    __m512 acc[MAX_VECTORS];
    const int vectors = (int)(D / 16);
    for (int j = 0; j < vectors; ++j) acc[j] = _mm512_setzero_ps();
    for (t = 0; t < T; ++t) {
      const uint16_t* vr = vb + t * v_row;
      for (int64_t d = 0; d < D; d += 32) _mm_prefetch((const char*)(vr + 16 * v_row + d), _MM_HINT_T0);
      if (scores[t] == 0.f) continue;
      const __m512 p = _mm512_set1_ps(scores[t] * inverse);
      for (int j = 0; j < vectors; ++j) acc[j] = _mm512_fmadd_ps(p, widen(vr + 16 * j), acc[j]);
    }
    for (int j = 0; j < vectors; ++j) _mm256_storeu_si256((__m256i*)(orow + 16 * j), (__m256i)_mm512_cvtneps_pbh(acc[j]));
    return;
  }
  std::vector<float> acc(D, 0.f);
  for (t = 0; t < T; ++t) {
    if (scores[t] == 0.f) continue;
    const __m512 p = _mm512_set1_ps(scores[t] * inverse);
    const uint16_t* vr = vb + t * v_row;
    for (int64_t d = 0; d < D; d += 16) _mm512_storeu_ps(acc.data() + d, _mm512_fmadd_ps(p, widen(vr + d), _mm512_loadu_ps(acc.data() + d)));
  }
  for (int64_t d = 0; d < D; d += 16) _mm256_storeu_si256((__m256i*)(orow + d), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(acc.data() + d)));
}

torch::Tensor decode_attention_bf16(torch::Tensor q, torch::Tensor k, torch::Tensor v, torch::Tensor mask) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), D = q.size(3), T = k.size(2), Hkv = k.size(1);
  TORCH_CHECK(D % 16 == 0 && k.stride(3) == 1 && v.stride(3) == 1 && H % Hkv == 0, "decode_attention_bf16: unsupported layout");
  auto out = torch::empty({B, H, S, D}, q.options());
  const auto* qp = reinterpret_cast<const uint16_t*>(q.data_ptr());
  const auto* kp = reinterpret_cast<const uint16_t*>(k.data_ptr());
  const auto* vp = reinterpret_cast<const uint16_t*>(v.data_ptr());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr());
  const bool* mp = mask.numel() ? mask.data_ptr<bool>() : nullptr;  // [B, 1, S, T], contiguous
  at::parallel_for(0, B * H, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> qf(D), scores(T + 16);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H, g = h / (H / Hkv);
      for (int64_t s = 0; s < S; ++s)
        attend_row(qp + b * q.stride(0) + h * q.stride(1) + s * q.stride(2), q.stride(3),
                   kp + b * k.stride(0) + g * k.stride(1), k.stride(2), vp + b * v.stride(0) + g * v.stride(1), v.stride(2),
                   mp ? mp + (b * S + s) * T : nullptr, T, D, op + ((b * H + h) * S + s) * D, qf.data(), scores.data());
    }
  });
  return out;
}


__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static inline __m512 round_trip(__m512 f) {  // to bf16 (nearest even) and back to float32
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(f)), 16));
}

// One row of D values (a multiple of 32) rotated by its cos and sin rows.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void rope_row(const uint16_t* xr, const uint16_t* cr, const uint16_t* sr, uint16_t* orow, int64_t D) {
  const int64_t half = D / 2;
  const __m512i sign = _mm512_set1_epi32((int)0x80000000);
  for (int64_t d = 0; d < D; d += 16) {
    // rotate_half(x)[d] = -x[d + half] for d < half, x[d - half] after
    const __m512 other = widen(xr + (d < half ? d + half : d - half));
    const __m512 rotated = d < half ? _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(other), sign)) : other;
    const __m512 sum = _mm512_add_ps(round_trip(_mm512_mul_ps(widen(xr + d), widen(cr + d))),
                                     round_trip(_mm512_mul_ps(rotated, widen(sr + d))));
    _mm256_storeu_si256((__m256i*)(orow + d), (__m256i)_mm512_cvtneps_pbh(sum));
  }
}

// RoPE of bf16 x [B, H, S, D] (any strides, unit stride along D) by the bf16 tables cos, sin
// [B, 1, S, D] (contiguous), rounding as PyTorch's three bf16 ops do: x*cos and rotate_half(x)*sin
// each rounded to bf16, then their sum rounded again. One call instead of six ops.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
torch::Tensor rope_bf16(torch::Tensor x, torch::Tensor cos, torch::Tensor sin) {
  const int64_t B = x.size(0), H = x.size(1), S = x.size(2), D = x.size(3);
  TORCH_CHECK(D % 32 == 0 && x.stride(3) == 1 && cos.is_contiguous() && sin.is_contiguous(), "rope_bf16: unsupported layout");
  auto out = torch::empty({B, H, S, D}, x.options());
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  const auto* cp = reinterpret_cast<const uint16_t*>(cos.data_ptr());
  const auto* sp = reinterpret_cast<const uint16_t*>(sin.data_ptr());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s) {
        const uint16_t* xr = xp + b * x.stride(0) + h * x.stride(1) + s * x.stride(2);
        const uint16_t* cr = cp + (b * S + s) * D;
        const uint16_t* sr = sp + (b * S + s) * D;
        rope_row(xr, cr, sr, op + ((b * H + h) * S + s) * D, D);
      }
  return out;
}

torch::Tensor gemv_bf16(torch::Tensor x, torch::Tensor w) {
  auto out = torch::empty({w.size(0)}, x.options());
  const RowProduct product{0, w.data_ptr(), nullptr, w.size(0), reinterpret_cast<uint16_t*>(out.data_ptr())};
  row_products(&product, 1, reinterpret_cast<const uint16_t*>(x.data_ptr()), w.size(1));  // x [K], w [N, K] bf16, contiguous
  return out;
}

// SwiGLU's middle, bf16(bf16(silu(g)) * u), as MLP.forward rounds it (silu's result to bf16, then the
// product), with silu(g) = g / (1 + exp(-g)) in float32 and exp_ps (relative error about 1e-7,
// below float32's own rounding of the division). PyTorch's silu uses another exp (SLEEF), so about one output in a
// few hundred lands on the neighbouring bf16 value; it matters for speed: after a layer's weights
// have streamed through the caches, PyTorch's silu and product cost 20-60 us per call in dispatch
// and cold code, this loop about one.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void silu_mul_rows(const uint16_t* g, const uint16_t* u, uint16_t* y, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 gv = widen(g + i);
    const __m512 silu = round_trip(_mm512_div_ps(gv, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gv)))));
    _mm256_storeu_si256((__m256i*)(y + i), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(silu, widen(u + i))));
  }
  if (i < n) {  // the last few through a padded vector
    alignas(64) uint16_t gt[16] = {0}, ut[16] = {0}, yt[16];
    std::memcpy(gt, g + i, (n - i) * 2);
    std::memcpy(ut, u + i, (n - i) * 2);
    silu_mul_rows(gt, ut, yt, 16);
    std::memcpy(y + i, yt, (n - i) * 2);
  }
}

// g, u: bf16 of one shape (contiguous) -> bf16(bf16(silu(g)) * u).
torch::Tensor silu_mul_bf16(torch::Tensor g, torch::Tensor u) {
  TORCH_CHECK(g.is_contiguous() && u.is_contiguous() && g.sizes() == u.sizes() && g.scalar_type() == torch::kBFloat16
              && u.scalar_type() == torch::kBFloat16, "silu_mul_bf16: unsupported input");
  auto out = torch::empty_like(g);
  const int64_t n = g.numel();
  const auto* gp = reinterpret_cast<const uint16_t*>(g.data_ptr());
  const auto* up = reinterpret_cast<const uint16_t*>(u.data_ptr());
  auto* yp = reinterpret_cast<uint16_t*>(out.data_ptr());
  if (n <= 65536) silu_mul_rows(gp, up, yp, n);
  else at::parallel_for(0, (n + 4095) / 4096, 1, [&](int64_t b0, int64_t b1) {
    silu_mul_rows(gp + b0 * 4096, up + b0 * 4096, yp + b0 * 4096, std::min(b1 * 4096, n) - b0 * 4096);
  });
  return out;
}

// ---- one decode step of one layer in one call -------------------------------------------------
// Block.forward for one new token of one sequence with no mask, as the modules compute it with the
// kernels above, without returning to Python between its parts (at decode sizes, the dozen module
// calls and two dozen PyTorch ops of a layer cost a quarter of a millisecond, about as much as
// streaming a fifth of its int4 weights). The parts and their rounding are the modules' own:
//   h = norm_in(x); q, k, v = products(h); RoPE on q and k; k, v written to the cache at
//   `position`; a = attention over the cache's first position + 1 columns; x1 = x + norm_in2(o(a));
//   h2 = norm_post(x1); x2 = x1 + norm_post2(down(silu(gate(h2)) * up(h2)))
// each result rounded to bf16 where the module's is (SwiGLU's middle by silu_mul_bf16's loop, as
// NativeMLP computes it), so the layer is the native modules' result bit for bit.
// Products (q, k, v, o, gate, up, down): kind 0 bf16 (weight), 1 int8 (codes, float32 scale per
// row), 2 int4 (tiles, row factors), two tensors each (an unused one empty).
static bool layer_timing_on = false;
static double layer_seconds[3] = {0.0, 0.0, 0.0};  // products, attention, norms and elementwise

struct PartClock {  // charges the time since the last charge to a part, when timing is on
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  void charge(int part) {
    if (!layer_timing_on) return;
    const auto now = std::chrono::steady_clock::now();
    layer_seconds[part] += std::chrono::duration<double>(now - last).count();
    last = now;
  }
};

void set_layer_timing(bool on) { layer_timing_on = on; }

std::vector<double> take_layer_timings() {  // seconds per part since the last call, then reset
  std::vector<double> out(layer_seconds, layer_seconds + 3);
  std::fill(layer_seconds, layer_seconds + 3, 0.0);
  return out;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void add_bf16(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t D) {  // y = bf16(a + b), as PyTorch's add
  int64_t i = 0;
  for (; i + 16 <= D; i += 16)
    _mm256_storeu_si256((__m256i*)(y + i), (__m256i)_mm512_cvtneps_pbh(_mm512_add_ps(widen(a + i), widen(b + i))));
  for (; i < D; ++i) y[i] = bf16_bits(bf16_value(a[i]) + bf16_value(b[i]));
}

struct DecodeLayer {
  std::vector<torch::Tensor> norms;  // norm_in, norm_in2, norm_post, norm_post2 weights [hidden] bf16
  std::vector<int64_t> kinds;
  std::vector<torch::Tensor> weights;
  double eps;
  int64_t heads, kv_heads, head_dim, hidden, intermediate;

  DecodeLayer(std::vector<torch::Tensor> norms_, std::vector<int64_t> kinds_, std::vector<torch::Tensor> weights_, double eps_,
              int64_t heads_, int64_t kv_heads_, int64_t head_dim_)
      : norms(norms_), kinds(kinds_), weights(weights_), eps(eps_), heads(heads_), kv_heads(kv_heads_), head_dim(head_dim_) {
    TORCH_CHECK(norms.size() == 4 && kinds.size() == 7 && weights.size() == 14 && head_dim % 32 == 0 && heads % kv_heads == 0,
                "DecodeLayer: unsupported layer");
    hidden = norms[0].numel();
    intermediate = out_features(4);
    for (const auto& w : norms) TORCH_CHECK(w.is_contiguous() && w.scalar_type() == torch::kBFloat16 && w.numel() == hidden, "DecodeLayer: norm weights");
    for (int p = 0; p < 7; ++p) {
      const auto& t = weights[2 * p];
      const int64_t K = in_features(p);
      TORCH_CHECK(t.is_contiguous() && t.dim() == 2 && kinds[p] >= 0 && kinds[p] <= 2
                  && (kinds[p] == 2 ? t.size(1) == int4_tile_bytes(K) && out_features(p) % INT4_TILE_ROWS == 0 : t.size(1) == K),
                  "DecodeLayer: product weights");
    }
  }

  // Rows of product p (q, k, v, o, gate, up, down): an int4 weight is tiles of 4 rows, its row factors one per row.
  int64_t out_features(int p) const { return kinds[p] == 2 ? weights[2 * p + 1].size(0) : weights[2 * p].size(0); }

  int64_t in_features(int p) const { return p == 3 ? heads * head_dim : p == 6 ? intermediate : hidden; }

  // Products of one input row (q, k and v; gate and up; o; down), together (row_products).
  void products(std::initializer_list<int> ps, const uint16_t* x, std::initializer_list<uint16_t*> ys) const {
    TORCH_CHECK(ps.size() <= 3 && ps.size() == ys.size(), "DecodeLayer.products: 1 to 3 products");
    RowProduct list[3];
    int count = 0;
    for (const int p : ps) {
      const torch::Tensor* t = &weights[2 * p];
      list[count] = RowProduct{(int)kinds[p], t[0].data_ptr(), t[1].numel() ? t[1].data_ptr() : nullptr, out_features(p), ys.begin()[count]};
      ++count;
    }
    row_products(list, count, x, in_features(*ps.begin()));
  }

  void norm(int which, const uint16_t* x, uint16_t* y) const {
    rmsnorm_rows(x, reinterpret_cast<const uint16_t*>(norms[which].data_ptr()), y, 0, 1, hidden, (float)eps);
  }

  // x: the layer's input (hidden bf16 values); cos, sin: [1, 1, 1, head_dim] bf16; k_cache, v_cache:
  // [slots, 1, kv_heads, columns, head_dim] bf16. Returns the layer's output, shaped as x.
  torch::Tensor step(torch::Tensor x, torch::Tensor cos, torch::Tensor sin, torch::Tensor k_cache, torch::Tensor v_cache,
                     int64_t slot, int64_t position) const {
    const int64_t H = heads, Hkv = kv_heads, D = head_dim, columns = k_cache.size(3);
    TORCH_CHECK(x.is_contiguous() && x.numel() == hidden && x.scalar_type() == torch::kBFloat16 && cos.is_contiguous() && sin.is_contiguous()
                && cos.numel() == D && sin.numel() == D && k_cache.is_contiguous() && v_cache.is_contiguous() && k_cache.size(1) == 1
                && k_cache.size(2) == Hkv && k_cache.size(4) == D && position < columns && slot < k_cache.size(0),
                "DecodeLayer.step: unsupported input");
    PartClock clock;
    auto out = torch::empty_like(x);
    thread_local std::vector<uint16_t> scratch;  // reused: a fresh allocation per layer costs more than its norms
    scratch.resize(5 * hidden + 3 * H * D + 2 * Hkv * D + 3 * intermediate);
    uint16_t *h = scratch.data(), *o = h + hidden, *x1 = o + hidden, *d = x1 + hidden, *t = d + hidden;
    uint16_t *q = t + hidden, *qr = q + H * D, *k = qr + H * D, *v = k + Hkv * D, *att = v + Hkv * D, *mid = att + H * D;
    uint16_t *gate = mid + intermediate, *up = gate + intermediate;
    const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
    const auto* cp = reinterpret_cast<const uint16_t*>(cos.data_ptr());
    const auto* sp = reinterpret_cast<const uint16_t*>(sin.data_ptr());
    auto* kc = reinterpret_cast<uint16_t*>(k_cache.data_ptr()) + slot * Hkv * columns * D;
    auto* vc = reinterpret_cast<uint16_t*>(v_cache.data_ptr()) + slot * Hkv * columns * D;

    norm(0, xp, h);
    clock.charge(2);
    products({0, 1, 2}, h, {q, k, v});
    clock.charge(0);
    for (int64_t i = 0; i < H; ++i) rope_row(q + i * D, cp, sp, qr + i * D, D);
    for (int64_t g = 0; g < Hkv; ++g) {  // the cache's new column: rotated keys, plain values
      rope_row(k + g * D, cp, sp, kc + (g * columns + position) * D, D);
      std::memcpy(vc + (g * columns + position) * D, v + g * D, D * sizeof(uint16_t));
    }
    at::parallel_for(0, H, 1, [&](int64_t h0, int64_t h1) {
      std::vector<float> qf(D), scores(position + 17);
      for (int64_t i = h0; i < h1; ++i) {
        const int64_t g = i / (H / Hkv);
        attend_row(qr + i * D, 1, kc + g * columns * D, D, vc + g * columns * D, D, nullptr, position + 1, D, att + i * D,
                   qf.data(), scores.data());
      }
    });
    clock.charge(1);
    products({3}, att, {o});
    clock.charge(0);
    norm(1, o, t);
    add_bf16(xp, t, x1, hidden);
    norm(2, x1, h);
    clock.charge(2);
    products({4, 5}, h, {gate, up});
    clock.charge(0);
    silu_mul_rows(gate, up, mid, intermediate);
    clock.charge(2);
    products({6}, mid, {d});
    clock.charge(0);
    norm(3, d, t);
    add_bf16(x1, t, reinterpret_cast<uint16_t*>(out.data_ptr()), hidden);
    clock.charge(2);
    return out;
  }
};

// ---- every layer of one loop step in one call -------------------------------------------------
// DecodeLayer.step for each layer in turn, layer i reading and writing cache slot first_slot + i:
// the same results bit for bit, without a return to Python between layers. The Python work of a
// layer call (the module call, its checks, the binding) runs on caches the layer's weights have
// just swept: measured on the 1.4B int4 shape, 0.45 ms of a 16 ms loop step went to it.
struct DecodeStack {
  std::vector<DecodeLayer> layers;

  explicit DecodeStack(std::vector<DecodeLayer> layers_) : layers(std::move(layers_)) {
    TORCH_CHECK(!layers.empty(), "DecodeStack: no layers");
  }

  torch::Tensor step(torch::Tensor x, torch::Tensor cos, torch::Tensor sin, torch::Tensor k_cache, torch::Tensor v_cache,
                     int64_t first_slot, int64_t position) const {
    TORCH_CHECK(first_slot >= 0 && first_slot + (int64_t)layers.size() <= k_cache.size(0), "DecodeStack.step: cache slots out of range");
    for (const auto& layer : layers) x = layer.step(x, cos, sin, k_cache, v_cache, first_slot++, position);
    return x;
  }
};

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gemv_bf16", &gemv_bf16);
  m.def("gemv_int8", &gemv_int8);
  m.def("matmul_int4", &matmul_int4);
  m.def("matmul_int8", &matmul_int8);
  m.def("rmsnorm_bf16", &rmsnorm_bf16);
  m.def("decode_attention_bf16", &decode_attention_bf16);
  m.def("rope_bf16", &rope_bf16);
  m.def("silu_mul_bf16", &silu_mul_bf16);
  m.def("set_layer_timing", &set_layer_timing);
  m.def("take_layer_timings", &take_layer_timings);
  pybind11::class_<DecodeLayer>(m, "DecodeLayer", pybind11::module_local())
      .def(pybind11::init<std::vector<torch::Tensor>, std::vector<int64_t>, std::vector<torch::Tensor>, double, int64_t, int64_t, int64_t>())
      .def("step", &DecodeLayer::step);
  pybind11::class_<DecodeStack>(m, "DecodeStack", pybind11::module_local())
      .def(pybind11::init<std::vector<DecodeLayer>>())
      .def("step", &DecodeStack::step);
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
STALE_BUILD_LOCK_S = 600
"""A build lock older than this was left by a compile that was interrupted (one takes about a minute):
torch's lock is a bare file that nobody else removes, so every later start would wait on it forever."""


def clear_stale_build_lock(build_dir: Path, now: float | None = None) -> bool:
    """Remove `build_dir`/lock when it is older than STALE_BUILD_LOCK_S; True when one was removed."""
    lock = build_dir / "lock"
    try:
        age = (time.time() if now is None else now) - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if age <= STALE_BUILD_LOCK_S:
        return False
    print(f"Removing the lock an interrupted compile of Lantern's native kernels left behind ({lock}, {age / 60:.0f} min old).",
          file=sys.stderr, flush=True)
    lock.unlink(missing_ok=True)
    return True
EXTENSION = "lantern_kernels_v56"
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
            build_dir = Path(_get_build_directory(EXTENSION, False))
            clear_stale_build_lock(build_dir)
            if not (build_dir / f"{EXTENSION}.so").exists():
                print("Compiling Lantern's native CPU kernels, once for this machine (about a minute)...", file=sys.stderr, flush=True)
            return load_inline(EXTENSION, cpp_sources=_SOURCE, extra_cflags=["-O3", "-fopenmp"], extra_ldflags=["-fopenmp"], verbose=False)
        except Exception as exc:  # no compiler, no ninja, an old assembler: run without the kernel
            log.warning("native CPU kernels unavailable (%s: %s); using PyTorch's", type(exc).__name__, str(exc).splitlines()[0][:200])
            return None


def gemv_bf16(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [K] bf16 @ weight [N, K].T -> [N] bf16 with the native kernel (callers check `native()`)."""
    return native().gemv_bf16(x, weight)


def gemv_int8(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [K] bf16 (K a multiple of 256) times int8 weights with one float32 scale per row -> [N] bf16.
    x is quantized to int8 per block of 256 (each value within half a step, max|x_b|/254, of its
    own), which lets VNNI multiply bytes directly (callers check `native()`)."""
    return native().gemv_int8(x, codes, scale)


def matmul_int8(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, block_sums: torch.Tensor) -> torch.Tensor:
    """x [M, K] bf16 (K a multiple of 256) times int8 weights -> [M, N] bf16, each row of x
    quantized as gemv_int8 quantizes it; block_sums = codes summed per row and block of 256
    (int32 [N, K/256], see quantize.Int8Linear)."""
    return native().matmul_int8(x, codes, scale, block_sums)


def matmul_int4(x: torch.Tensor, tiles: torch.Tensor, row_factors: torch.Tensor) -> torch.Tensor:
    """x [M, K] bf16 times int4 weights in Lantern's layout (quantize.tile_int4: codes with their
    scale and zero codes, in tiles of 4 rows; the rows' grids in row_factors [N, 3], see
    quantize.Int4Quantized) -> [M, N] bf16; x is quantized to int8 per group of 64 columns (each
    value within max|x_g|/254 of its own). One row (decode) or many (prompts); N a multiple of 16
    (quantize.int4_fits)."""
    return native().matmul_int4(x, tiles, row_factors)


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


class NativeMLP(MLP):
    """MLP whose bf16 CPU rows take SwiGLU's middle from the native loop (silu_mul_bf16): the same
    roundings as F.silu(g) * u, with another exp, so an output may sit one bf16 step away."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_proj(x), self.up_proj(x)
        if gate.dtype == torch.bfloat16 and up.dtype == torch.bfloat16 and gate.device.type == "cpu" and gate.is_contiguous() and up.is_contiguous():
            return self.down_proj(native().silu_mul_bf16(gate, up))
        return self.down_proj(F.silu(gate) * up)


class NativeBlock(Block):
    """Block whose bf16 decode steps on CPU (one token of one sequence, no mask, a static cache) run
    as one native call, `DecodeLayer.step`, with the same parts, kernels and roundings as the
    modules (kernels.NativeAttention, NativeRMSNorm, the products' own kernels), so the result is
    the modules' bit for bit. Every other case, and a layer with a part the fused step does not
    know (a plain nn.Linear, PyTorch's int4 backend, odd widths), runs the modules."""

    def forward(self, x, cos, sin, mask, cache, slot, start) -> torch.Tensor:
        if decode_applies(x, cos, mask, cache, start):
            fused = self._fused()
            if fused is not None:
                return fused.step(x, cos, sin, cache.k, cache.v, slot, start)
        return super().forward(x, cos, sin, mask, cache, slot, start)

    def _parts(self) -> tuple:
        attention, mlp = self._modules["self_attn"], self._modules["mlp"]
        return (self._modules["input_layernorm"], self._modules["input_layernorm_2"], self._modules["post_attention_layernorm"],
                self._modules["post_attention_layernorm_2"], attention._modules["q_proj"], attention._modules["k_proj"],
                attention._modules["v_proj"], attention._modules["o_proj"], mlp._modules["gate_proj"], mlp._modules["up_proj"],
                mlp._modules["down_proj"])

    def _fused(self):
        """The native layer over this block's current parts (rebuilt when a part was swapped), or None."""
        parts = self._parts()
        cached = self.__dict__.get("_fused_layer")
        if cached is not None and all(a is b for a, b in zip(cached[0], parts)):
            return cached[1]
        layer = _decode_layer(self, parts)
        self.__dict__["_fused_layer"] = (parts, layer)
        return layer


def _product_tensors(linear: nn.Module) -> tuple[int, list[torch.Tensor]] | None:
    """(kind, two tensors) of a projection for DecodeLayer, or None when it has no native decode kernel."""
    from lantern.runtime.quantize import Int4Linear, Int8Linear

    empty = torch.empty(0)
    if type(linear) is GemvLinear and linear.bias is None and linear.weight.dtype == torch.bfloat16 and linear.weight.is_contiguous():
        return 0, [linear.weight, empty]
    if type(linear) is Int8Linear and linear.in_features % 256 == 0 and linear.weight_int8.is_contiguous():
        return 1, [linear.weight_int8, linear._scale_f32()]
    if type(linear) is Int4Linear and linear.backend == "native":  # whole tiles and groups by construction (int4_fits, tile_int4)
        return 2, [linear.weight_int4, linear.row_factors]
    return None


def _decode_layer(block: Block, parts: tuple):
    norms, products = parts[:4], parts[4:]
    attention = block.self_attn
    if native() is None or type(block.mlp) is not NativeMLP or type(attention) is not NativeAttention \
            or any(type(norm) is not NativeRMSNorm or not norm.weight.is_contiguous() for norm in norms) \
            or len({norm.eps for norm in norms}) != 1 or attention.head_dim % 32:
        return None
    kinds, weights = [], []
    for linear in products:
        found = _product_tensors(linear)
        if found is None:
            return None
        kinds.append(found[0])
        weights += found[1]
    return native().DecodeLayer([norm.weight for norm in norms], kinds, weights, norms[0].eps,
                                attention.heads, attention.kv_heads, attention.head_dim)


_registrations = [0]
"""Modules, parameters and buffers assigned anywhere in this process since install() first ran
(PyTorch's global registration hooks count them): a NativeOuro's layer stack is rebuilt when this
moved, so a swapped part is never multiplied by weights the stack still holds."""


@functools.lru_cache(maxsize=None)
def _count_registrations() -> None:
    def count(*_):
        _registrations[0] += 1

    from torch.nn.modules import module as torch_module

    torch_module.register_module_module_registration_hook(count)
    torch_module.register_module_parameter_registration_hook(count)
    torch_module.register_module_buffer_registration_hook(count)


def decode_applies(x: torch.Tensor, cos: torch.Tensor, mask, cache, start: int) -> bool:
    """Whether a layer step is one the native layer serves: one bf16 token of one sequence on CPU, no
    mask, a static cache with room for it."""
    return mask is None and cache is not None and x.shape[0] == 1 and x.shape[1] == 1 and x.dtype == torch.bfloat16 \
        and x.device.type == "cpu" and x.is_contiguous() and cos.dtype == torch.bfloat16 and cos.numel() == cos.shape[-1] \
        and start < cache.max_len  # past the cache: the modules say so clearly


class NativeOuro(OuroForCausalLM):
    """OuroForCausalLM whose decode loop steps run every layer in one native call (DecodeStack.step
    over the layers' DecodeLayer steps: the layers' results bit for bit) when every layer has a
    native step; otherwise, and for every other case, the layers run one by one as before."""

    def loop_step(self, h, step: int, cos, sin, mask, cache=None, start: int = 0):
        if decode_applies(h, cos, mask, cache, start):
            stack = self._stack()
            if stack is not None:
                return self.step_output(self.run_layers(stack, h, cos, sin, cache, step * self.config.num_hidden_layers, start))
        return super().loop_step(h, step, cos, sin, mask, cache, start)

    def run_layers(self, stack, h, cos, sin, cache, first_slot: int, start: int) -> torch.Tensor:
        return stack.step(h, cos, sin, cache.k, cache.v, first_slot, start)

    def _stack(self):
        """The native stack over the current layers (rebuilt when anything was assigned to any module
        since it was built), or None when a layer has no native step."""
        built = self.__dict__.get("_native_stack")
        if built is not None and built[0] == _registrations[0]:
            return built[1]
        layers = [block._fused() if type(block) is NativeBlock else None for block in self.model.layers]
        stack = native().DecodeStack(layers) if layers and all(layer is not None for layer in layers) else None
        self.__dict__["_native_stack"] = (_registrations[0], stack)
        return stack


def install(model: nn.Module) -> int:
    """Swap every bias-free bf16 CPU Linear with more than one output for a GemvLinear over the same
    weight, every bf16 RMSNorm for a NativeRMSNorm, and every Attention, MLP and Block for its native
    class (same parameters; only bf16 CPU steps differ), when the kernels are available; returns how
    many modules were swapped."""
    if native() is None:
        return 0
    norms = [m for m in model.modules() if type(m) is RMSNorm and m.weight.dtype == torch.bfloat16 and m.weight.device.type == "cpu"]
    for norm in norms:
        norm.__class__ = NativeRMSNorm  # same parameters and attributes; only forward differs
    attentions = [m for m in model.modules() if type(m) is Attention]  # install() runs on CPU bf16 models only
    for attention in attentions:
        attention.__class__ = NativeAttention  # only the bf16 decode step differs
    mlps = [m for m in model.modules() if type(m) is MLP]
    for mlp in mlps:
        mlp.__class__ = NativeMLP  # SwiGLU's middle in one native loop
    blocks = [m for m in model.modules() if type(m) is Block]
    for block in blocks:
        block.__class__ = NativeBlock  # one native call per layer for a decode step
    models = [m for m in model.modules() if type(m) is OuroForCausalLM]
    for whole in models:
        whole.__class__ = NativeOuro  # one native call per loop step of a decode token
    _count_registrations()
    return len(norms) + len(attentions) + len(mlps) + len(blocks) + len(models) + _install_gemv(model)


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
