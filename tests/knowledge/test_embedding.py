"""The embedders against sentence-transformers itself, the reference."""

import json

import numpy as np
import pytest

from lantern.embedding import Layout, TextEncoder, load_embedder, load_query_embedder, resolve_embedder, simple_layout

TEXTS = [
    "How does Ouro decide when to stop looping?",
    "short",
    "A much longer sentence with Ünïcode café and numbers 1,234.5 " * 40,  # past the 256-token limit
    "Irene Hervey was an American film actress born in 1909.",
    "",
    "  spaced   text\n\nwith lines",
]


@pytest.fixture(scope="module")
def reference():
    return load_embedder("all-MiniLM-L6-v2", reference=True).encode(TEXTS, batch_size=2, convert_to_numpy=True, show_progress_bar=False)


def test_the_default_embedder_runs_on_the_own_bert_encoder_and_matches_the_reference(reference):
    encoder = load_embedder("all-MiniLM-L6-v2")
    assert isinstance(encoder, TextEncoder) and encoder.bert is not None
    ours = encoder.encode(TEXTS, batch_size=2)
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-5


def test_the_transformers_fallback_matches_the_reference_too(reference, monkeypatch):
    from pathlib import Path

    from lantern import bert_encoder

    monkeypatch.setattr(bert_encoder, "supports", lambda folder: False)
    folder = Path(resolve_embedder("all-MiniLM-L6-v2"))
    encoder = TextEncoder(folder, simple_layout(folder))
    assert encoder.bert is None
    assert np.abs(encoder.encode(TEXTS, batch_size=4) - reference).max() < 1e-5


def test_the_fast_query_embedder_agrees_with_the_float32_reference(reference):
    fast = np.stack([load_query_embedder("all-MiniLM-L6-v2").encode([t], normalize_embeddings=True)[0] for t in TEXTS])
    assert fast.dtype == np.float32
    assert (reference * fast).sum(axis=1).min() >= 0.995


def test_the_numpy_query_embedder_matches_the_reference_without_torch(reference):
    from lantern.bert_encoder import NumpyBert

    light = load_query_embedder("all-MiniLM-L6-v2", without_torch=True)
    assert isinstance(light.bert, NumpyBert)
    assert np.abs(light.encode(TEXTS, batch_size=2) - reference).max() < 1e-5
    one_by_one = np.stack([light.encode([t])[0] for t in TEXTS])
    assert np.abs(one_by_one - reference).max() < 1e-5


def test_numpy_erf_is_exact_to_float32_rounding():
    import math

    from lantern.bert_encoder import erf

    x = np.linspace(-7, 7, 20001, dtype=np.float32)
    assert np.abs(erf(x) - np.array([math.erf(float(v)) for v in x])).max() < 5e-7


def test_lantern_search_never_imports_torch(tmp_path):
    """`lantern search` embeds one query; importing torch for it cost 1.3 s of a 3 s command."""
    import os
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gate.md").write_text("# Exit\n\nAn exit gate decides when the model stops looping.\n")
    env = dict(os.environ, LANTERN_HOME=str(tmp_path / "home"))
    subprocess.run([sys.executable, "-m", "lantern", "ingest", str(docs)], env=env, check=True, capture_output=True)
    probe = ("import sys\nfrom lantern.cli import main\ntry:\n    main(['search', 'when does the model stop', '--json'])\n"
             "except SystemExit as exc:\n    assert not exc.code\nprint('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
    assert json.loads(done.stdout)[0]["source"].endswith("gate.md")
    assert done.stderr.strip().splitlines()[-1] == "False"


def _folder(tmp_path, modules, pooling, config=None):
    (tmp_path / "1_Pooling").mkdir(parents=True, exist_ok=True)
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if config is not None:
        (tmp_path / "sentence_bert_config.json").write_text(json.dumps(config))
    return tmp_path


def test_only_the_simple_layouts_skip_sentence_transformers(tmp_path):
    transformer = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
    pooling = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    normalize = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    mean = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    cls = {"pooling_mode_cls_token": True}
    assert simple_layout(_folder(tmp_path / "a", [transformer, pooling, normalize], mean, {"max_seq_length": 128})) == Layout("mean", True, 128, False)
    assert simple_layout(_folder(tmp_path / "b", [transformer, pooling], cls)) == Layout("cls", False, None, False)
    assert simple_layout(_folder(tmp_path / "c", [transformer, pooling, dense], mean)) is None  # a projection layer
    assert simple_layout(_folder(tmp_path / "d", [transformer, pooling], {"pooling_mode_weightedmean_tokens": True})) is None
    assert simple_layout(_folder(tmp_path / "e", [transformer, pooling], {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True})) is None
    assert simple_layout(tmp_path / "missing") is None
