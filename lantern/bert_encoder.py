"""A BERT-family encoder forward pass in plain torch, for sentence embeddings at CLI speed.

`lantern search` must embed one query, and importing transformers' model classes costs about 4 s
on the project's machine (the forward pass itself takes 10 ms). This module runs the same
computation from the checkpoint's own files: config.json, model.safetensors (read zero-copy by the
runtime's reader) and tokenizer.json (through the `tokenizers` library). It knows only the
classic post-LayerNorm BERT with absolute positions and exact GELU (BERT, MiniLM, most
sentence-transformers checkpoints of that family); `BertEncoder.supports` says no to the rest,
which then loads through transformers. Tests compare it with sentence-transformers on the default
embedder: the outputs match to float32 rounding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

_PREFIXES = ("", "bert.", "model.")


class BertEncoder:
    """`last_hidden_state` of a BertModel checkpoint folder, batch-first, float32 output."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        from lantern.runtime.loader import read_safetensors

        self.config = json.loads((folder / "config.json").read_text())
        tensors = read_safetensors(folder / "model.safetensors")
        prefix = next(p for p in _PREFIXES if f"{p}embeddings.word_embeddings.weight" in tensors)
        self.weights = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.heads = int(self.config["num_attention_heads"])
        self.layers = int(self.config["num_hidden_layers"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        self.pad_id = int(self.config.get("pad_token_id") or 0)

    @staticmethod
    def supports(folder: Path) -> bool:
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            return False
        return (config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu"
                and config.get("position_embedding_type", "absolute") == "absolute"
                and (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists())

    @property
    def hidden_size(self) -> int:
        return int(self.config["hidden_size"])

    def to(self, dtype: torch.dtype) -> "BertEncoder":
        """A copy whose matrices are in `dtype` (LayerNorm and the output stay float32)."""
        other = object.__new__(BertEncoder)
        other.__dict__.update(self.__dict__)
        other.weights = {name: (t.to(dtype) if t.dim() == 2 and "embeddings" not in name else t) for name, t in self.weights.items()}
        return other

    def tokenize(self, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ids, token types and attention mask, each sequence cut to `max_length`
        (keeping its final [SEP], as transformers' truncation does)."""
        encodings = self.tokenizer.encode_batch(texts)
        rows = []
        for enc in encodings:
            ids, types = list(enc.ids), list(enc.type_ids)
            if len(ids) > max_length:
                special = enc.special_tokens_mask
                tail = [i for i, s in zip(ids[-1:], special[-1:]) if s]  # the closing [SEP]
                ids = ids[: max_length - len(tail)] + tail
                types = types[: max_length]
            rows.append((ids, types))
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        token_types = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, types) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            token_types[i, : len(types)] = torch.tensor(types)
            mask[i, : len(ids)] = 1
        return input_ids, token_types, mask

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, token_types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
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

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        weight = self.weights[name + ".weight"]
        return F.linear(x, weight, self.weights[name + ".bias"].to(weight.dtype))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weights[name + ".weight"].float(), self.weights[name + ".bias"].float(), self.eps)
