"""A BERT-family encoder forward pass without transformers' model classes, in torch or numpy.

`lantern search` must embed one query, and importing transformers' model classes costs about 4 s
on the project's machine (the forward pass itself takes 10 ms). This module runs the same
computation from the checkpoint's own files: config.json, model.safetensors and tokenizer.json
(through the `tokenizers` library). It knows only the classic post-LayerNorm BERT with absolute
positions and exact GELU (BERT, MiniLM, most sentence-transformers checkpoints of that family);
`supports` says no to the rest, which then loads through transformers.

Two backends of one computation:
- `BertEncoder` (torch): batches, bfloat16 copies; what ingestion and long-running processes use.
- `NumpyBert` (numpy only): for a process that embeds one short query and would otherwise import
  torch just for it (about 1.3 s on the project's machine, against 10 ms of numpy work). Per query
  it is slower than torch (12 vs 5 to 7 ms, small matrix products) and in batches several times
  slower, so it serves `lantern search` and nothing that embeds many texts.
Tests compare both with sentence-transformers on the default embedder: the outputs match to float32
rounding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_PREFIXES = ("", "bert.", "model.")


def supports(folder: Path) -> bool:
    """Whether the folder holds a checkpoint this module can run (else: transformers' AutoModel)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists())


def load_tokenizer(folder: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def strip_prefix(tensors: dict) -> dict:
    """Tensor names as a bare BertModel has them (checkpoints saved from a wrapper prefix them)."""
    prefix = next(p for p in _PREFIXES if f"{p}embeddings.word_embeddings.weight" in tensors)
    return {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}


def token_rows(tokenizer, texts: list[str], max_length: int, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded ids, token types and attention mask (int64 arrays [B, L]), each sequence cut to
    `max_length` keeping its final [SEP], as transformers' truncation does."""
    rows = []
    for enc in tokenizer.encode_batch(texts):
        ids, types = list(enc.ids), list(enc.type_ids)
        if len(ids) > max_length:
            tail = [i for i, special in zip(ids[-1:], enc.special_tokens_mask[-1:]) if special]  # the closing [SEP]
            ids = ids[: max_length - len(tail)] + tail
            types = types[:max_length]
        rows.append((ids, types))
    width = max(len(ids) for ids, _ in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    token_types = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, (ids, types) in enumerate(rows):
        input_ids[i, : len(ids)] = ids
        token_types[i, : len(types)] = types
        mask[i, : len(ids)] = 1
    return input_ids, token_types, mask


class _BertFolder:
    """What both backends read from a checkpoint folder besides the weights."""

    def __init__(self, folder: Path) -> None:
        self.config = json.loads((folder / "config.json").read_text())
        self.tokenizer = load_tokenizer(folder)
        self.heads = int(self.config["num_attention_heads"])
        self.layers = int(self.config["num_hidden_layers"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        self.pad_id = int(self.config.get("pad_token_id") or 0)

    @property
    def hidden_size(self) -> int:
        return int(self.config["hidden_size"])


class BertEncoder(_BertFolder):
    """`last_hidden_state` of a BertModel checkpoint folder, batch-first, float32 output (torch)."""

    def __init__(self, folder: Path) -> None:
        from lantern.runtime.loader import read_safetensors

        super().__init__(folder)
        self.weights = strip_prefix(read_safetensors(folder / "model.safetensors"))

    def to(self, dtype) -> "BertEncoder":
        """A copy whose matrices are in `dtype` (LayerNorm and the output stay float32)."""
        other = object.__new__(BertEncoder)
        other.__dict__.update(self.__dict__)
        other.weights = {name: (t.to(dtype) if t.dim() == 2 and "embeddings" not in name else t) for name, t in self.weights.items()}
        return other

    def tokenize(self, texts: list[str], max_length: int):
        """`token_rows` as torch tensors."""
        import torch

        return tuple(torch.from_numpy(a) for a in token_rows(self.tokenizer, texts, max_length, self.pad_id))

    def forward(self, input_ids, token_types, mask):
        """Token states [B, L, H], float32."""
        import torch

        with torch.inference_mode():
            return self._forward(input_ids, token_types, mask)

    def _forward(self, input_ids, token_types, mask):
        import torch
        import torch.nn.functional as F

        w = self.weights
        batch, length = input_ids.shape
        positions = torch.arange(length)
        h = w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][positions] \
            + w["embeddings.token_type_embeddings.weight"][token_types]
        h = self._norm(h.float(), "embeddings.LayerNorm")
        dtype = w["encoder.layer.0.attention.self.query.weight"].dtype
        keep = mask.bool()[:, None, None, :]  # [B, 1, 1, L]: attend to real tokens only
        head_dim = self.hidden_size // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            x = h.to(dtype)

            def split(name: str) -> torch.Tensor:
                return self._linear(x, p + name).view(batch, length, self.heads, head_dim).transpose(1, 2)

            q, k, v = split("attention.self.query"), split("attention.self.key"), split("attention.self.value")
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1 / math.sqrt(head_dim))
            attended = attended.transpose(1, 2).reshape(batch, length, self.hidden_size)
            h = self._norm(h + self._linear(attended, p + "attention.output.dense").float(), p + "attention.output.LayerNorm")
            inner = F.gelu(self._linear(h.to(dtype), p + "intermediate.dense"))
            h = self._norm(h + self._linear(inner, p + "output.dense").float(), p + "output.LayerNorm")
        return h

    def _linear(self, x, name: str):
        import torch.nn.functional as F

        weight = self.weights[name + ".weight"]
        return F.linear(x, weight, self.weights[name + ".bias"].to(weight.dtype))

    def _norm(self, x, name: str):
        import torch.nn.functional as F

        return F.layer_norm(x, (x.shape[-1],), self.weights[name + ".weight"].float(), self.weights[name + ".bias"].float(), self.eps)


class NumpyBert(_BertFolder):
    """The same forward pass as `BertEncoder` in numpy float32, for one short text without torch."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file

        super().__init__(folder)
        weights = strip_prefix(load_file(str(folder / "model.safetensors")))
        # Linear weights transposed once, so each product is activations @ weight.
        self.weights = {name: (np.ascontiguousarray(t.T) if t.ndim == 2 and "embeddings" not in name else t).astype(np.float32)
                        for name, t in weights.items() if t.dtype.kind == "f"}

    def tokenize(self, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return token_rows(self.tokenizer, texts, max_length, self.pad_id)

    def forward(self, input_ids: np.ndarray, token_types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token states [B, L, H], float32."""
        w = self.weights
        batch, length = input_ids.shape
        head_dim = self.hidden_size // self.heads
        h = w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][:length] \
            + w["embeddings.token_type_embeddings.weight"][token_types]
        h = self._norm(h, "embeddings.LayerNorm")
        # -inf on padded keys: softmax gives them weight 0, as the torch path's boolean mask does.
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def heads(name: str) -> np.ndarray:
                return self._linear(h, p + name).reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3)

            q, k, v = heads("attention.self.query"), heads("attention.self.key"), heads("attention.self.value")
            scores = q @ k.transpose(0, 1, 3, 2) * np.float32(1 / math.sqrt(head_dim)) + key_bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden_size)
            h = self._norm(h + self._linear(attended, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            inner = self._linear(h, p + "intermediate.dense")
            inner = np.float32(0.5) * inner * (np.float32(1) + erf(inner * np.float32(1 / math.sqrt(2))))
            h = self._norm(h + self._linear(inner, p + "output.dense"), p + "output.LayerNorm")
        return h

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.weights[name + ".weight"] + self.weights[name + ".bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True)
        scale = np.float32(1) / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + np.float32(self.eps))
        return centred * scale * self.weights[name + ".weight"] + self.weights[name + ".bias"]


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to about 1.2e-7 (Numerical Recipes' Chebyshev fit of erfc):
    numpy has none, and exact GELU needs it; float32 rounding is of the same size."""
    z = np.abs(x)
    t = np.float32(1) / (np.float32(1) + np.float32(0.5) * z)
    poly = np.float32(0.17087277)
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223):
        poly = np.float32(c) + t * poly
    erfc = t * np.exp(-z * z + poly)
    return np.where(x >= 0, np.float32(1) - erfc, erfc - np.float32(1))
