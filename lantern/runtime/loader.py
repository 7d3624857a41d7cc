"""Snapshot directory (or model id) -> a ready LoopLM: config, weights, tokenizer, chat template.

Weights are read with a small safetensors reader of our own that maps the file and hands out
zero-copy tensors (copy-on-write mmap), so loading a bf16 checkpoint on CPU costs no second copy;
the model is built on the `meta` device and takes the tensors with `assign=True`. Every tensor name
and shape is checked against the config before anything is built, and a truncated or foreign file
gets a one-line CheckpointError instead of a stack trace. Sharded snapshots (with
model.safetensors.index.json) load the same way.

With `quant` int8 or int4 the projection weights are never converted or read: their quantized
copies come from an artifact made once per checkpoint (LANTERN_HOME/quantized/), and the first
time they are made from the mapped file one tensor at a time, each tensor's pages dropped again
(`release_pages`), so an int4 process never holds the bf16 weights. The same release keeps a
float32 load of a bf16 file from holding both copies.

This module knows nothing about generation.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import mmap
import struct
import weakref
from pathlib import Path

import torch

from lantern.errors import CheckpointError
from lantern.runtime.config import OuroConfig
from lantern.runtime.locate import require

log = logging.getLogger(__name__)

_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64,
           "I8": torch.int8, "U8": torch.uint8, "I32": torch.int32, "I64": torch.int64, "BOOL": torch.bool}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
             "float32": torch.float32, "fp32": torch.float32, "float64": torch.float64}
    if dtype not in names:
        raise CheckpointError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32.")
    return names[dtype]


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("device cuda was asked for but torch sees no CUDA GPU; use --set device=cpu (see `lantern doctor`).")
    return device


def uses_native_kernels(device: str | torch.device, dtype: str | torch.dtype) -> bool:
    """Whether a model loaded this way runs Lantern's native CPU kernels (bf16 on the CPU, where
    they build: see kernels.py); callers that only time things ask first, so a GPU run never
    compiles them."""
    return resolve_device(device).type == "cpu" and parse_dtype(dtype) == torch.bfloat16


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one .safetensors file as zero-copy CPU tensors over a private mmap."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CheckpointError(f"cannot open {path} ({exc.strerror}).") from None
    with handle:
        size = path.stat().st_size
        head = handle.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is empty or truncated; re-download it with `lantern model pull`.")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(size - 8, 100_000_000):
            raise CheckpointError(f"{path} is not a safetensors file (bad header length); re-download it.")
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{path} has a corrupt safetensors header; re-download it.") from None
        data_start = 8 + header_len
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY) if size > data_start else None
        if mapped is not None:
            _remember_mapping(mapped, size)
    tensors: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')}.")
        begin, end = info["data_offsets"]
        if data_start + end > size:
            raise CheckpointError(f"{path} is truncated ({size:,} bytes, tensor {name} needs {data_start + end:,}); re-download it with `lantern model pull`.")
        shape = info["shape"]
        count = end - begin
        element = torch.empty((), dtype=dtype).element_size()
        numel = 1
        for dim in shape:
            numel *= dim
        if numel * element != count:
            raise CheckpointError(f"{path}: tensor {name} has {count} bytes for shape {shape}; the file is corrupt.")
        if numel == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        elif (data_start + begin) % element == 0:
            tensors[name] = torch.frombuffer(mapped, dtype=dtype, count=numel, offset=data_start + begin).view(shape)
        else:  # misaligned: copy this one tensor
            raw = bytearray(mapped[data_start + begin : data_start + end])
            tensors[name] = torch.frombuffer(raw, dtype=dtype).view(shape)
    return tensors


_MAPPED: list[tuple[int, int]] = []
"""Address ranges of the files this module mapped: the only memory `release_pages` may drop."""
_MADV_DONTNEED = 4
_libc = ctypes.CDLL(None, use_errno=True) if hasattr(mmap, "MADV_DONTNEED") else None


def _remember_mapping(mapped: mmap.mmap, size: int) -> None:
    view = ctypes.c_char.from_buffer(mapped)
    span = (ctypes.addressof(view), ctypes.addressof(view) + size)
    del view  # a live export would keep the mapping from ever closing
    _MAPPED.append(span)
    # Once unmapped, the range may hold heap memory: forget it the moment the mapping goes.
    weakref.finalize(mapped, _MAPPED.remove, span)


def release_pages(tensor: torch.Tensor) -> None:
    """Drop the whole pages of a tensor read from a file mapping out of this process's memory.
    The mapping is private and never written, so a later read simply faults them in from the file
    again. Tensors not inside a mapping made here are left alone (on heap memory the same call would
    zero them)."""
    if _libc is None or tensor.device.type != "cpu" or tensor.numel() == 0:
        return
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    if not any(low <= start and end <= high for low, high in _MAPPED):
        return
    page = mmap.PAGESIZE
    first, last = -(-start // page) * page, end // page * page
    if last > first:
        _libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)


MMAP_THRESHOLD = 4 * 2**20
"""Heap blocks of at least this many bytes get their own mapping, handed back to the system on free."""
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


@functools.lru_cache(maxsize=1)
def return_large_blocks_on_free() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD. By default glibc raises it to the size of each
    large block freed (up to 32 MB), after which blocks below it come from the heap and stay in the
    process's memory once freed: a 1.4B int8 run that had timed its thread count (8-16 MB buffers)
    held 0.8 GB more than one that had not (2.4-2.6 against 1.7 GB after its first tokens; 1.7 GB
    with the threshold fixed at 4 MB, 1.9 GB at 16 MB). True where the C library took the setting
    (glibc); elsewhere nothing changes."""
    mallopt = getattr(_libc, "mallopt", None) if _libc is not None else None
    return bool(mallopt is not None and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1)


_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


ALIGN = 64
"""Byte alignment of every tensor in the files we write: the fused int8 kernel crashes on weights
that are not 64-byte aligned, and aligned tensors can be used straight from the mapping."""


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a standard .safetensors file one tensor at a time (safetensors' own save_file first
    makes a bytes copy of every tensor, which would double a quantized model's memory peak), every
    tensor starting ALIGN-aligned: the format allows no gaps, so small `__padding_N` tensors fill them."""
    header: dict[str, object] = {"__metadata__": metadata}
    layout: list[torch.Tensor] = []
    offset = 0
    for name, tensor in tensors.items():
        gap = -offset % ALIGN
        if gap:
            header[f"__padding_{len(layout)}"] = {"dtype": "U8", "shape": [gap], "data_offsets": [offset, offset + gap]}
            layout.append(torch.zeros(gap, dtype=torch.uint8))
            offset += gap
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": _DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        layout.append(tensor)
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-(8 + len(encoded)) % ALIGN)  # the data starts aligned too (mappings start on a page)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for tensor in layout:
            if tensor.numel():
                handle.write(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)


def read_weights(snapshot: Path) -> dict[str, torch.Tensor]:
    index = snapshot / "model.safetensors.index.json"
    single = snapshot / "model.safetensors"
    if single.exists():
        return read_safetensors(single)
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError):
            raise CheckpointError(f"{index} is corrupt; re-download the model.") from None
        tensors: dict[str, torch.Tensor] = {}
        for file in sorted(set(weight_map.values())):
            if not (snapshot / file).exists():
                raise CheckpointError(f"{snapshot / file} is missing (listed in the index); re-download the model with `lantern model pull`.")
            tensors |= read_safetensors(snapshot / file)
        return tensors
    raise CheckpointError(f"{snapshot} has no model.safetensors; re-download the model with `lantern model pull`.")


def expected_shapes(config: OuroConfig) -> dict[str, tuple[int, ...]]:
    from lantern.runtime.model import OuroForCausalLM

    with torch.device("meta"):
        model = OuroForCausalLM(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def check_tensors(tensors: dict[str, torch.Tensor], config: OuroConfig, where: Path) -> dict[str, torch.Tensor]:
    expected = expected_shapes(config)
    if "lm_head.weight" not in tensors and config.tie_word_embeddings and "model.embed_tokens.weight" in tensors:
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise CheckpointError(f"{where}: {len(missing)} tensor(s) missing, e.g. {missing[0]}; is this an Ouro checkpoint, and is the download complete?")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{where}: tensor {name} has shape {tuple(tensors[name].shape)}, config.json implies {shape}; config and weights do not match.")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        log.info("ignoring %d unexpected tensors, e.g. %s", len(extra), extra[0])
    return {name: tensors[name] for name in expected}


def load_tokenizer(snapshot: Path):
    from transformers import PreTrainedTokenizerFast

    file = snapshot / "tokenizer.json"
    if not file.exists():
        raise CheckpointError(f"{snapshot} has no tokenizer.json; re-download the model with `lantern model pull`.")
    config_file = snapshot / "tokenizer_config.json"
    extra = json.loads(config_file.read_text()) if config_file.exists() else {}
    special = {k: extra[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if isinstance(extra.get(k), str)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(file), **special)
    template = extra.get("chat_template")
    if (snapshot / "chat_template.jinja").exists():
        template = (snapshot / "chat_template.jinja").read_text()
    tokenizer.chat_template = template
    return tokenizer


def stop_token_ids(snapshot: Path, tokenizer) -> set[int]:
    ids: set[int] = set()
    file = snapshot / "generation_config.json"
    if file.exists():
        eos = json.loads(file.read_text()).get("eos_token_id")
        ids |= set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end, int) and end != tokenizer.unk_token_id:
        ids.add(end)
    return ids


def quant_artifact(snapshot: Path, mode: str) -> Path:
    """Where the `mode` (int8, int4) weights of this exact checkpoint (path, sizes, times) are kept."""
    import hashlib

    from lantern.runtime.quantize import INT4_GROUP
    from lantern.settings import default_home

    files = sorted(p for p in snapshot.iterdir() if p.name.endswith(".safetensors"))
    key = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    # "-v2": int8 artifacts written before write_safetensors were unaligned, and every unaligned
    # tensor had to be copied out of the mapping (twice the memory); those are made again once.
    # int4 "-v2": the codes' layout changed to the VNNI kernel's (quantize.pack_int4); "-v3": scales
    # and zeros became 8-bit codes on per-row grids (quantize.Int4Quantized); "-v4": codes and their
    # scale codes stored together in tiles of 4 rows (quantize.tile_int4).
    name = "model-int8-v2.safetensors" if mode == "int8" else f"model-int4-g{INT4_GROUP}-v4.safetensors"
    return default_home() / "quantized" / hashlib.sha1(key.encode()).hexdigest()[:16] / name


def _quantized_from_artifact(model, artifact: Path, mode: str, dtype: torch.dtype, device: torch.device) -> bool:
    from lantern.runtime.quantize import apply

    if not artifact.exists():
        return False
    try:
        return apply(model, mode, read_safetensors(artifact), dtype, device)
    except (CheckpointError, OSError, ValueError, struct.error) as exc:
        log.warning("ignoring unusable %s artifact %s: %s", mode, artifact, exc)
        return False


def _make_quantized(model, snapshot: Path, mode: str, originals: dict[str, torch.Tensor], dtype: torch.dtype, device: torch.device) -> None:
    """Quantized Linears from the saved artifact when there is a good one, else quantize now (one
    original tensor at a time, its pages released after) and save them for next time."""
    from lantern.runtime.quantize import quantize

    artifact = quant_artifact(snapshot, mode)
    if _quantized_from_artifact(model, artifact, mode, dtype, device):
        return
    tensors = quantize(model, mode, originals, dtype, device, release=release_pages)
    metadata = {"format": "pt", "quantization": f"{mode} weight-only (lantern.runtime.quantize)"}
    try:
        artifact.parent.mkdir(parents=True, exist_ok=True)
        partial = artifact.with_suffix(".partial")
        write_safetensors(partial, tensors, metadata)
        partial.replace(artifact)  # atomic: a killed save never leaves a half artifact under the real name
        for stale in artifact.parent.glob(f"model-{mode}-*.safetensors"):
            if stale.name != artifact.name:  # an older format of the same weights, never read again
                stale.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not save %s weights to %s (%s); they will be quantized again next time", mode, artifact, exc)


def resolve_quant(quant: str | None, int8: bool = False) -> str:
    """The quantization mode from `quant` (none, int8, int4) and the older int8 flag."""
    from lantern.runtime.quantize import MODES

    quant = quant or ("int8" if int8 else "none")
    if quant not in MODES:
        raise CheckpointError(f"unknown quantization {quant!r}; use none, int8 or int4.")
    return quant


def load(path_or_id: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype = torch.bfloat16, int8: bool = False,
         quant: str | None = None):
    """Load an Ouro snapshot (directory, HF id or short name) as a LoopLM ready to generate.
    `quant`: none, int8 or int4 weight-only quantization (`int8=True` is the older spelling of int8)."""
    from lantern.runtime.lm import LoopLM
    from lantern.runtime.model import OuroForCausalLM
    from lantern.runtime.quantize import quantized_weight_names

    quant = resolve_quant(quant, int8)
    return_large_blocks_on_free()
    snapshot = require(str(path_or_id))
    dtype = parse_dtype(dtype)
    device = resolve_device(device)
    if quant == "int4" and device.type != "cpu":
        raise CheckpointError(f"int4 weights run on the CPU only (torch's packed int4 kernel); use --quant int8 or none on {device}.")
    config = OuroConfig.from_json(snapshot / "config.json")
    tensors = check_tensors(read_weights(snapshot), config, snapshot)
    with torch.device("meta"):
        model = OuroForCausalLM(config)
    replaced = quantized_weight_names(model, quant)
    state = {}
    for name, tensor in tensors.items():
        if name in replaced:
            state[name] = tensor  # a placeholder, never read: its quantized copy replaces it below
            continue
        state[name] = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        if state[name].data_ptr() != tensor.data_ptr():
            release_pages(tensor)  # converted or moved: the mapped original is not needed in memory
    model.load_state_dict(state, assign=True, strict=True)
    model.eval().requires_grad_(False)
    if quant != "none":
        _make_quantized(model, snapshot, quant, tensors, dtype, device)
    if uses_native_kernels(device, dtype):
        from lantern.runtime.kernels import install

        install(model)  # the native bf16 matrix-vector kernel, where the CPU has one (kernels.py)
    tokenizer = load_tokenizer(snapshot)
    lm = LoopLM(model, tokenizer, config, name=str(path_or_id), stop_ids=stop_token_ids(snapshot, tokenizer), snapshot=snapshot)
    lm.quant = quant
    return lm
