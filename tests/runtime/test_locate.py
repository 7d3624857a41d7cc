"""Model lookup: local snapshot dirs and the HF cache layout, without the network."""

import json

import pytest

from lantern.errors import ModelNotFound
from lantern.runtime.locate import SHORT_NAMES, locate, repo_id_for, require


def fake_snapshot(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "ouro"}))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_short_names_and_ids():
    assert repo_id_for("ouro-1.4b") == "ByteDance/Ouro-1.4B"
    assert repo_id_for("Ouro-2.6B-Thinking") == SHORT_NAMES["ouro-2.6b-thinking"]
    assert repo_id_for("someone/model") == "someone/model"
    assert repo_id_for("./local/dir") is None


def test_local_directory(tmp_path):
    snapshot = fake_snapshot(tmp_path / "ouro")
    assert locate(str(snapshot)).path == snapshot
    with pytest.raises(ModelNotFound, match="no checkpoint at"):
        require(str(tmp_path / "missing"))


def test_hf_cache_layout(tmp_path):
    repo = tmp_path / "hf-cache" / "models--ByteDance--Ouro-1.4B"
    snapshot = fake_snapshot(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert require("ouro-1.4b") == snapshot


def test_incomplete_cache_entry_is_not_a_snapshot(tmp_path):
    repo = tmp_path / "hf-cache" / "models--ByteDance--Ouro-1.4B" / "snapshots" / "abc"
    repo.mkdir(parents=True)
    (repo / "config.json").write_text("{}")  # weights never finished downloading
    with pytest.raises(ModelNotFound, match="lantern model pull ouro-1.4b"):
        require("ouro-1.4b")
