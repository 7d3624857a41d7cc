"""Weight-only quantization for memory-bound decode: int8 per output channel, int4 per group.

Batch-1 decode reads every layer weight once per loop step, so its speed is (bytes per token) /
(read bandwidth): fewer bytes per weight is the lever. Two schemes, chosen by the `quant` setting:

- int8: w ~= q * scale, q in [-127, 127], one scale per output row (scale = max|row| / 127).
- int4: w ~= (q - 8) * scale + zero, q in [0, 15], one (scale, zero) pair per group of
  `INT4_GROUP` consecutive input columns of a row (asymmetric; each group's range is shrunk by
  the factor of `CLIP_RATIOS` that minimises its squared error, since clipping the rare extreme
  weight buys finer steps for all the others). Scale and zero are stored as 8-bit codes on a
  linear grid of their row (scale = code * step, zero = zero_low + code * zero_step; 16 bits per
  group instead of two bf16 values' 32, so 4.25 bits per weight instead of 4.5), and the clipping
  and the codes are chosen with them already rounded, so the codes fit what the kernels use.

`Int8Linear` and `Int4Linear` swap in for nn.Linear. On bf16 models on CPUs with AVX-512 BF16 and
VNNI, Lantern's native kernels (kernels.py) multiply the small weights directly, one row (decode)
or many (prompts), rounding the activations to int8 per block. Elsewhere int8 decode uses
PyTorch's fused kernel (`torch._weight_int8pack_mm`) and int8 prompts the ordinary matrix kernel
over the codes converted 1024 rows at a time into one reused buffer (the fused kernel works row by
row, 3-5x slower there); int4 uses PyTorch's kernel (`torch.ops.aten._weight_int4pack_mm_for_cpu`).
int4 runs on CPU only.

What gets quantized (`plan`): every attention and MLP projection; the output head is int8 in both
modes (in int4 it would save 47 MB of a 1.4B token's 2.86 GB, 1.6%, and its error lands on the logits directly);
embeddings and the 1-output exit gate stay in the model's dtype. A projection whose input width is not a whole number of
64-column groups, or whose output width is not a multiple of 16, falls back to int8.

`quantize(model, mode)` converts a model in place and returns the tensors the loader saves once
per checkpoint (LANTERN_HOME/quantized/); `apply(model, mode, tensors)` swaps the saved tensors back
in. The int4 tensors are stored in Lantern's own layout (`tile_int4`), the same on every CPU, made
for the native kernel (see pack_int4 and tile_int4) and converted once at load for PyTorch's where that runs.
The accuracy cost is measured, not assumed: `lantern bench --quant int8|int4` reports
top-1 agreement with the unquantized model, in a separate process (see bench.py).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lantern.runtime import kernels

MODES = ("none", "int8", "int4")
INT4_GROUP = 64
"""Input columns sharing one (scale, zero) pair (the native kernel's layout is built on it). On
Gaussian weights the relative error is 0.076 with groups of 32, 0.086 with 64, 0.095 with 128."""
CLIP_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8)
MATRIX_KERNEL_ROWS = 8
"""Without the native kernels: from this many input rows on (a prompt), int8 converts its codes for the ordinary matrix kernel."""

ACCURACY_NOTICE = {
    "int8": "int8 weights: about half the bytes of bf16 per token; next-token choices can differ from bf16 "
            "(measure it with `lantern bench --quant int8`, which reports top-1 agreement).",
    "int4": "int4 weights: about a quarter of the bytes of bf16 per token, at a visible accuracy cost "
            "(some next-token choices differ from bf16; `lantern bench --quant int4` reports top-1 agreement); "
            "use --quant int8 or none when answers matter more than speed.",
}


# --- int8 -------------------------------------------------------------------------------------
def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (int8 codes [N, K], fp32 scale [N]) with w ~= q * scale."""
    codes, scales = [], []
    for rows in weight.split(4096):  # float32 temporaries of a 49k-row head would be 1.4 GB at once
        w = rows.float()
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        codes.append(torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        scales.append(scale)
    return torch.cat(codes), torch.cat(scales)


class Int8Linear(nn.Module):
    def __init__(self, q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale.to(dtype))
        self.in_features, self.out_features = q.shape[1], q.shape[0]

    def dequantized(self, dtype: torch.dtype) -> torch.Tensor:
        return self.weight_int8.to(dtype) * self.scale.to(dtype)[:, None]

    def _scale_f32(self) -> torch.Tensor:
        if getattr(self, "_f32", None) is None or self._f32.device != self.scale.device:
            self._f32 = self.scale.float().contiguous()
        return self._f32

    def _block_sums(self) -> torch.Tensor:
        """The codes summed per row and block of 256 columns (int32), for the native prompt kernel."""
        if getattr(self, "_sums", None) is None:
            # A few thousand rows at a time: the sum converts its input to int32 first, which for the
            # whole 49k-row head of the 1.4B shape was a 0.4 GB temporary at the first prompt.
            blocks = self.weight_int8.reshape(self.out_features, -1, 256)
            self._sums = torch.cat([rows.sum(dim=-1, dtype=torch.int32) for rows in blocks.split(4096)]).contiguous()
        return self._sums

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features)
        native = x.dtype == torch.bfloat16 and x.device.type == "cpu" and self.in_features % 256 == 0 and kernels.native() is not None
        if native and rows.shape[0] == 1:
            out = kernels.gemv_int8(rows.reshape(-1).contiguous(), self.weight_int8, self._scale_f32()).reshape(1, -1)
        elif native:
            out = kernels.matmul_int8(rows.contiguous(), self.weight_int8, self._scale_f32(), self._block_sums())
        elif x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float32, torch.float16) and rows.shape[0] < MATRIX_KERNEL_ROWS:
            out = torch._weight_int8pack_mm(rows, self.weight_int8, self.scale.to(x.dtype))
        else:
            out = _codes_matmul(rows, self.weight_int8) * self.scale.to(x.dtype)
        return out.reshape(*shape[:-1], self.out_features)


_scratch = threading.local()
CHUNK_ROWS = 1024


def _scratch_buffer(columns: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """One reused [CHUNK_ROWS, columns] buffer per thread, width and dtype."""
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    key = (columns, dtype, device)
    if key not in buffers:
        buffers[key] = torch.empty(CHUNK_ROWS, columns, dtype=dtype, device=device)
    return buffers[key]


def _chunked_matmul(x: torch.Tensor, rows: int, fill) -> torch.Tensor:
    """x [M, K] @ W.T for a weight W [rows, K] that `fill(start, stop, buffer)` writes a chunk of
    rows at a time, as x's dtype, into one reused buffer, each chunk multiplied with the ordinary
    matrix kernel. A fresh full-size copy of W per call costs more than the product itself (new
    pages are zeroed and faulted in); the reused chunk stays in cache."""
    buffer = _scratch_buffer(x.shape[1], x.dtype, x.device)
    out = torch.empty(x.shape[0], rows, dtype=x.dtype, device=x.device)
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, rows)
        out[:, start:stop] = F.linear(x, fill(start, stop, buffer[: stop - start]))
    return out


def _codes_matmul(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """x [M, K] @ int8 codes.T, the codes (exact in bf16) converted a chunk at a time."""
    return _chunked_matmul(x, codes.shape[0], lambda start, stop, buffer: buffer.copy_(codes[start:stop]))


# --- int4 -------------------------------------------------------------------------------------
class Int4Quantized(NamedTuple):
    """An int4 weight as stored: w ~= (codes - 8) * scale + zero per group of columns, where each
    group's scale and zero are themselves 8-bit codes on a per-row linear grid:
    scale = scale_codes * step, zero = zero_low + zero_codes * zero_step (float32)."""

    codes: torch.Tensor  # uint8 [N, K], 0..15
    scale_codes: torch.Tensor  # uint8 [N, K/group], 1..255
    zero_codes: torch.Tensor  # uint8 [N, K/group], 0..255
    row_factors: torch.Tensor  # float32 [N, 3]: step, zero_low, zero_step

    def scale(self) -> torch.Tensor:
        """float32 [N, K/group]: the scales the kernels multiply by."""
        return _grid_scale(self.scale_codes, self.row_factors)

    def zero(self) -> torch.Tensor:
        """float32 [N, K/group]: the zeros the kernels add."""
        return _grid_zero(self.zero_codes, self.row_factors)


def _grid_scale(scale_codes: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return scale_codes.float() * factors[:, 0:1]  # the kernel's order: code, then times the step


def _grid_zero(zero_codes: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return factors[:, 1:2] + zero_codes.float() * factors[:, 2:3]


def quantize_int4(weight: torch.Tensor, group: int = INT4_GROUP) -> Int4Quantized:
    """w [N, K] -> Int4Quantized; each group's range is clipped by the best of CLIP_RATIOS, judged
    with the scale and zero rounded to their 8-bit grid, so the codes fit what the kernels use."""
    # 256 rows at a time: the search's temporaries stay in cache (5x faster than whole matrices).
    parts = [_quantize_int4_rows(rows, group) for rows in weight.split(256)]
    return Int4Quantized(*(torch.cat(pieces) for pieces in zip(*parts)))


def _quantize_int4_rows(weight: torch.Tensor, group: int) -> tuple[torch.Tensor, ...]:
    n, k = weight.shape
    w = weight.float().reshape(n, k // group, group)
    low, high = w.amin(dim=-1), w.amax(dim=-1)
    # The row's grids: a clipped range (ratio <= 1) has a scale no larger than its unclipped one,
    # and a zero (low + 8 scale, scaled by the ratio) between 0 and its unclipped one.
    full_scale = (high - low).clamp(min=1e-8) / 15
    full_zero = low + 8 * full_scale
    step = full_scale.amax(dim=1, keepdim=True) / 255
    zero_low = full_zero.amin(dim=1, keepdim=True).clamp(max=0)
    zero_step = ((full_zero.amax(dim=1, keepdim=True).clamp(min=0) - zero_low) / 255).clamp(min=torch.finfo(torch.float32).tiny)
    factors = torch.cat([step, zero_low, zero_step], dim=1)
    best = None
    for ratio in CLIP_RATIOS:
        scale_codes = torch.round(full_scale * ratio / step).clamp(1, 255)
        scale = _grid_scale(scale_codes, factors)
        zero_codes = torch.round((low * ratio + 8 * scale - zero_low) / zero_step).clamp(0, 255)
        zero = _grid_zero(zero_codes, factors)
        codes = _int4_codes(w, scale, zero)
        err = ((codes - 8) * scale[..., None] + zero[..., None] - w).pow(2).sum(-1)
        if best is None:
            best = [err, scale_codes, zero_codes]
        else:
            better = err < best[0]
            best = [torch.where(better, new, old) for new, old in zip((err, scale_codes, zero_codes), best)]
    _, scale_codes, zero_codes = best
    codes = _int4_codes(w, _grid_scale(scale_codes, factors), _grid_zero(zero_codes, factors))
    return codes.to(torch.uint8).reshape(n, k), scale_codes.to(torch.uint8), zero_codes.to(torch.uint8), factors


def _int4_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    return torch.round((w - zero[..., None]) / scale[..., None] + 8).clamp(0, 15)


def dequantize_int4(quantized: Int4Quantized) -> torch.Tensor:
    """The reference: the float32 weights [N, K] an Int4Quantized stands for."""
    codes, scale, zero = quantized.codes, quantized.scale(), quantized.zero()
    n, k = codes.shape
    groups = scale.shape[1]
    w = (codes.float().reshape(n, groups, k // groups) - 8) * scale[..., None] + zero[..., None]
    return w.reshape(n, k)


SUPERBLOCK_GROUPS = 16
"""Groups of 64 columns whose codes are interleaved together (one per 32-bit lane of a vector)."""


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """codes [N, K] (0..15) -> Lantern's layout [N, K/2] uint8, made for VNNI (kernels.matmul_int4).
    A row is cut into superblocks of up to 16 groups of 64 columns (S groups, only the last may be
    short), each 8 units of 4S bytes; byte 4j + c of unit u holds, for group j of the superblock,
    column 8u + c in its low nibble and column 8u + 4 + c in its high nibble. Split into nibbles, a
    unit is two vectors of codes in which 32-bit lane j belongs to group j. The layout is the same on
    every CPU (the saved artifact is portable)."""
    n, k = codes.shape
    groups = k // INT4_GROUP
    parts = []
    for first in range(0, groups, SUPERBLOCK_GROUPS):
        size = min(SUPERBLOCK_GROUPS, groups - first)
        block = codes[:, first * 64:(first + size) * 64].to(torch.uint8).reshape(n, size, 8, 2, 4)  # group j, unit u, nibble h, c
        block = block.permute(0, 2, 1, 4, 3)  # n, u, j, c, h
        parts.append((block[..., 0] | (block[..., 1] << 4)).reshape(n, -1))
    return torch.cat(parts, dim=1).contiguous()


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of pack_int4: [N, K/2] uint8 -> codes [N, K] uint8."""
    n, half = packed.shape
    groups = half * 2 // INT4_GROUP
    parts = []
    for first in range(0, groups, SUPERBLOCK_GROUPS):
        size = min(SUPERBLOCK_GROUPS, groups - first)
        block = packed[:, first * 32:(first + size) * 32].reshape(n, 8, size, 4)  # unit u, group j, c
        nibbles = torch.stack([block & 15, block >> 4], dim=-1)  # n, u, j, c, h
        parts.append(nibbles.permute(0, 2, 1, 4, 3).reshape(n, size * 64))
    return torch.cat(parts, dim=1)


def superblock_codes(scale_codes: torch.Tensor, zero_codes: torch.Tensor) -> torch.Tensor:
    """scale and zero codes [N, K/64] uint8 -> [N, superblocks, 32] uint8: per superblock of
    pack_int4, the 16 groups' scale codes, then their zero codes (a short last superblock padded
    with zeros), as tile_int4 stores them after each superblock's codes: 32 bytes, which
    kernels.matmul_int4 widens to two vectors of 16."""
    n, groups = scale_codes.shape
    blocks = -(-groups // SUPERBLOCK_GROUPS)
    padded = torch.zeros(n, blocks * SUPERBLOCK_GROUPS, 2, dtype=torch.uint8)
    padded[:, :groups] = torch.stack([scale_codes, zero_codes], dim=-1)
    return padded.reshape(n, blocks, SUPERBLOCK_GROUPS, 2).transpose(2, 3).reshape(n, blocks, 2 * SUPERBLOCK_GROUPS).contiguous()


TILE_ROWS = 4
"""Weight rows whose codes and scale codes are stored together, in the order the native kernel reads them."""


def int4_tile_bytes(in_features: int) -> int:
    """Bytes of one tile of TILE_ROWS rows: their codes (in_features / 2 each) and 32 scale and zero codes per superblock each."""
    return TILE_ROWS * (in_features // 2 + 2 * SUPERBLOCK_GROUPS * -(-in_features // (INT4_GROUP * SUPERBLOCK_GROUPS)))


def tile_int4(quantized: Int4Quantized) -> torch.Tensor:
    """An Int4Quantized -> Lantern's stored layout [N/4, int4_tile_bytes(K)] uint8 (the row factors
    are kept apart). The rows go in tiles of 4 (kernels.matmul_int4's one-row kernel computes 4 outputs
    at a time; for prompts it unpacks 8 tiles into a panel of 32 rows);
    per superblock of pack_int4 a tile holds its 8 units of 4S bytes for each of its rows (unit u of
    row r at (4u + r) 4S bytes), then each row's 32 bytes of superblock_codes. So one tile is one
    run of bytes read front to back: decode streams the weights as one sequential read per thread
    (1.43x faster than four rows and their scales read side by side, see kernels.py)."""
    packed = pack_int4(quantized.codes)
    codes32 = superblock_codes(quantized.scale_codes, quantized.zero_codes)
    n, half = packed.shape
    groups = half * 2 // INT4_GROUP
    parts = []
    for index, first in enumerate(range(0, groups, SUPERBLOCK_GROUPS)):
        size = min(SUPERBLOCK_GROUPS, groups - first)
        units = packed[:, first * 32:(first + size) * 32].reshape(n // TILE_ROWS, TILE_ROWS, 8, 4 * size)
        parts.append(units.transpose(1, 2).reshape(n // TILE_ROWS, -1))  # unit u, then row r
        parts.append(codes32[:, index].reshape(n // TILE_ROWS, TILE_ROWS * 32))
    return torch.cat(parts, dim=1).contiguous()


def untile_int4(tiles: torch.Tensor, in_features: int, row_factors: torch.Tensor) -> Int4Quantized:
    """The inverse of tile_int4: the tiles [N/4, int4_tile_bytes(K)] and the row factors -> Int4Quantized."""
    tiles_count = tiles.shape[0]
    n, groups = tiles_count * TILE_ROWS, in_features // INT4_GROUP
    packed, scale_codes, zero_codes, at = [], [], [], 0
    for first in range(0, groups, SUPERBLOCK_GROUPS):
        size = min(SUPERBLOCK_GROUPS, groups - first)
        width = TILE_ROWS * 8 * 4 * size
        units = tiles[:, at:at + width].reshape(tiles_count, 8, TILE_ROWS, 4 * size).transpose(1, 2)
        packed.append(units.reshape(n, 32 * size))
        codes32 = tiles[:, at + width:at + width + TILE_ROWS * 32].reshape(n, 2, SUPERBLOCK_GROUPS)[..., :size]
        scale_codes.append(codes32[:, 0])
        zero_codes.append(codes32[:, 1])
        at += width + TILE_ROWS * 32
    return Int4Quantized(unpack_int4(torch.cat(packed, dim=1)), torch.cat(scale_codes, dim=1), torch.cat(zero_codes, dim=1),
                         row_factors.float())


def int4_fits(out_features: int, in_features: int) -> bool:
    """Whether a [out, in] weight can be int4: whole 64-column groups, and rows in blocks of 16 (the
    blocks PyTorch's int4 kernel, the fallback, packs, and the half panels of the native prompt kernel)."""
    return in_features % INT4_GROUP == 0 and out_features % 16 == 0


class Int4Linear(nn.Module):
    """A Linear over int4 weights (an Int4Quantized: w = (code - 8) * scale + zero per 64-column
    group, scale and zero 8-bit codes on per-row grids), stored as tile_int4 lays them out, run by
    one of two backends chosen when it is built:
    - native (bf16 models on CPUs with AVX-512 BF16 and VNNI, see kernels.py): the tiles read as
      they are by kernels.matmul_int4, one row or many, the activations rounded to int8 per group
      of 64 columns;
    - aten (everything else): repacked once into PyTorch's CPU layout for
      `torch.ops.aten._weight_int4pack_mm_for_cpu`, which takes float32, bf16 and fp16 rows (its
      scales and zeros in the rows' dtype: for bf16 rows rounded once more, to bf16)."""

    def __init__(self, tiles: torch.Tensor, row_factors: torch.Tensor, in_features: int, dtype: torch.dtype,
                 backend: str | None = None) -> None:
        super().__init__()
        self.out_features, self.in_features = row_factors.shape[0], in_features
        self.backend = backend or ("native" if dtype == torch.bfloat16 and tiles.device.type == "cpu" and kernels.native() is not None else "aten")
        if self.backend == "native":
            self.register_buffer("weight_int4", tiles.contiguous())  # [N/4, int4_tile_bytes(K)] uint8, Lantern's layout
            self.register_buffer("row_factors", row_factors.float().contiguous())  # [N, 3]
        else:
            codes = untile_int4(tiles, in_features, row_factors)
            self.register_buffer("weight_int4pack", torch._convert_weight_to_int4pack_for_cpu(codes.codes.to(torch.int32).cpu(), 1))
            scales_and_zeros = torch.stack([codes.scale(), codes.zero()], dim=-1)  # [N, K/64, 2] float32
            self.register_buffer("scales_and_zeros", scales_and_zeros.transpose(0, 1).contiguous())  # [K/64, N, 2]

    @classmethod
    def from_codes(cls, quantized: Int4Quantized, dtype: torch.dtype, backend: str | None = None) -> "Int4Linear":
        return cls(tile_int4(quantized), quantized.row_factors, quantized.codes.shape[1], dtype, backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features)
        if self.backend == "aten":
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.weight_int4pack, INT4_GROUP, self.scales_and_zeros.to(rows.dtype))
        else:
            out = kernels.matmul_int4(rows.to(torch.bfloat16).contiguous(), self.weight_int4, self.row_factors).to(rows.dtype)
        return out.reshape(*shape[:-1], self.out_features)


# --- whole models -----------------------------------------------------------------------------
def _linears(model: nn.Module):
    """(parent, attribute, full name, Linear) for every projection and the head (not the 1-output gate)."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child.out_features > 1:
                yield module, child_name, f"{name}.{child_name}" if name else child_name, child


def plan(model: nn.Module, mode: str) -> dict[str, str]:
    """Full Linear name -> "int8" or "int4" for every Linear that `mode` quantizes."""
    if mode not in MODES:
        raise ValueError(f"quant must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return {}
    chosen = {}
    for _, _, name, linear in _linears(model):
        int4_ok = mode == "int4" and name != "lm_head" and int4_fits(linear.out_features, linear.in_features)
        chosen[name] = "int4" if int4_ok else "int8"
    return chosen


def quantized_weight_names(model: nn.Module, mode: str) -> set[str]:
    """State-dict names of the weights `mode` replaces (the loader need not convert or even read them)."""
    return {f"{name}.weight" for name in plan(model, mode)}


def quantize_tensor(name: str, weight: torch.Tensor, scheme: str) -> dict[str, torch.Tensor]:
    """One weight -> the tensors saved for it (`<name>.weight_int8` + `.scale`, or `<name>.weight_int4`:
    codes with their scale and zero codes as tile_int4 lays them out, [N/4, int4_tile_bytes(K)]
    uint8, + `.row_factors` [N, 3] float32)."""
    if scheme == "int8":
        q, scale = quantize_weight(weight)
        return {f"{name}.weight_int8": q.cpu(), f"{name}.scale": scale.cpu()}
    quantized = quantize_int4(weight)
    return {f"{name}.weight_int4": tile_int4(quantized).cpu(), f"{name}.row_factors": quantized.row_factors.cpu()}


def quantize(model: nn.Module, mode: str, weights: dict[str, torch.Tensor] | None = None, dtype: torch.dtype | None = None,
             device: torch.device | str | None = None, release=None) -> dict[str, torch.Tensor]:
    """Quantize `model`'s Linears in place per `plan` and return the tensors to save. `weights`
    (state-dict name -> tensor) supplies the originals instead of the model's own; `dtype` and
    `device` are the activations' (default: each Linear's own); `release(tensor)` is called on
    each original once it is quantized (the loader drops its pages from memory)."""
    saved: dict[str, torch.Tensor] = {}
    chosen = plan(model, mode)
    for _, _, name, linear in _linears(model):
        if name in chosen:
            weight = weights[f"{name}.weight"] if weights is not None else linear.weight.data
            saved |= quantize_tensor(name, weight, chosen[name])
            if release is not None:
                release(weight)
    if not apply(model, mode, saved, dtype, device):
        raise RuntimeError("freshly quantized tensors did not fit the model")  # a bug, not bad input
    return saved


def apply(model: nn.Module, mode: str, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = None,
          device: torch.device | str | None = None) -> bool:
    """Swap in quantized Linears from saved tensors; False (model untouched) if any is missing or misshaped."""
    chosen = plan(model, mode)
    swaps = []
    for parent, attribute, name, linear in _linears(model):
        if name not in chosen:
            continue
        dtype_ = dtype or linear.weight.dtype
        device_ = torch.device(device) if device is not None else linear.weight.device
        if chosen[name] == "int8":
            q, scale = tensors.get(f"{name}.weight_int8"), tensors.get(f"{name}.scale")
            if q is None or scale is None or tuple(q.shape) != (linear.out_features, linear.in_features) or q.dtype != torch.int8:
                return False
            if q.device.type == "cpu" and q.data_ptr() % 64:
                q = q.clone()  # the fused int8 kernel crashes on weights that are not 64-byte aligned (mmap offsets)
            swaps.append((parent, attribute, Int8Linear(q.to(device_), scale.to(device_), dtype_)))
        else:
            tiles, factors = tensors.get(f"{name}.weight_int4"), tensors.get(f"{name}.row_factors")
            if tiles is None or factors is None or tiles.dtype != torch.uint8 or factors.dtype != torch.float32 \
                    or tuple(tiles.shape) != (linear.out_features // TILE_ROWS, int4_tile_bytes(linear.in_features)) \
                    or tuple(factors.shape) != (linear.out_features, 3):
                return False
            if device_.type != "cpu":
                return False  # int4 runs on CPU kernels only
            swaps.append((parent, attribute, Int4Linear(tiles, factors, linear.in_features, dtype_)))
    for parent, attribute, module in swaps:
        setattr(parent, attribute, module)
    return True
