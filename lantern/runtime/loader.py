"""Snapshot directory (or model id) -> a ready LoopLM: config, weights, tokenizer, chat template.

Weights are read with a small safetensors reader of our own that maps the file and hands out
zero-copy tensors (copy-on-write mmap), so loading a bf16 checkpoint on CPU costs no second copy;
the model is built on the `meta` device and takes the tensors with `assign=True`. Every tensor name
and shape is checked against the config before anything is built, and a truncated or foreign file
gets a one-line CheckpointError instead of a stack trace. Sharded snapshots (with
model.safetensors.index.json) load the same way.

This module knows nothing about generation.
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
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


def int8_artifact(snapshot: Path) -> Path:
    """Where the int8 weights of this exact checkpoint (path, sizes, times) are kept."""
    import hashlib

    from lantern.settings import default_home

    files = sorted(p for p in snapshot.iterdir() if p.name.endswith(".safetensors"))
    key = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    return default_home() / "quantized" / hashlib.sha1(key.encode()).hexdigest()[:16] / "model-int8.safetensors"


def _make_int8(model, snapshot: Path) -> None:
    """int8 weights from the saved artifact when there is a good one, else quantize now and save them."""
    from safetensors.torch import save_file

    from lantern.runtime.quantize import apply_int8, quantize_int8

    artifact = int8_artifact(snapshot)
    if artifact.exists():
        try:
            if apply_int8(model, read_safetensors(artifact)):
                return
        except CheckpointError as exc:
            log.warning("ignoring unusable int8 artifact %s: %s", artifact, exc)
    tensors = quantize_int8(model)
    try:
        artifact.parent.mkdir(parents=True, exist_ok=True)
        partial = artifact.with_suffix(".partial")
        save_file(tensors, str(partial), metadata={"format": "pt", "quantization": "int8 weight-only, per output channel"})
        partial.replace(artifact)  # atomic: a killed save never leaves a half artifact under the real name
    except OSError as exc:
        log.warning("could not save int8 weights to %s (%s); they will be quantized again next time", artifact, exc)


def load(path_or_id: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype = torch.bfloat16, int8: bool = False):
    """Load an Ouro snapshot (directory, HF id or short name) as a LoopLM ready to generate."""
    from lantern.runtime.lm import LoopLM
    from lantern.runtime.model import OuroForCausalLM

    snapshot = require(str(path_or_id))
    dtype = parse_dtype(dtype)
    device = resolve_device(device)
    config = OuroConfig.from_json(snapshot / "config.json")
    tensors = check_tensors(read_weights(snapshot), config, snapshot)
    state = {}
    for name, tensor in tensors.items():
        target = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        state[name] = target
    with torch.device("meta"):
        model = OuroForCausalLM(config)
    model.load_state_dict(state, assign=True, strict=True)
    model.eval().requires_grad_(False)
    if int8:
        _make_int8(model, snapshot)
    tokenizer = load_tokenizer(snapshot)
    return LoopLM(model, tokenizer, config, name=str(path_or_id), stop_ids=stop_token_ids(snapshot, tokenizer), snapshot=snapshot)
