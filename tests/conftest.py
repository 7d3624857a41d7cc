"""Shared fixtures: every test runs with its own LANTERN_HOME and an offline hub; `docs` and `kb`
are a small ingested knowledge base (the documents of tests/scripted.py), `tiny` a tiny random
Ouro checkpoint in the official format."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """A fresh LANTERN_HOME per test, and no chance of a hub call."""
    home = tmp_path / "lantern-home"
    monkeypatch.setenv("LANTERN_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for name in ("LANTERN_MODEL", "LANTERN_MODE", "LANTERN_DEVICE", "LANTERN_TOP_K"):
        monkeypatch.delenv(name, raising=False)
    # Lantern's own tool servers are on by default; tests that use them say so, the rest do not
    # start three servers for every answer.
    monkeypatch.setenv("LANTERN_BUILTIN_TOOLS", "false")
    from lantern.commands import common

    monkeypatch.setattr(common, "GLOBAL_FLAGS", {})
    return home


@pytest.fixture
def docs(tmp_path):
    from scripted import DOCS

    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def kb(docs):
    from lantern.knowledge import KnowledgeBase
    from lantern.settings import load_settings

    base = KnowledgeBase.open(load_settings())
    base.ingest([docs])
    return base


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from lantern.runtime.testing import make_random_checkpoint

    return make_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "ouro-tiny", "tiny", seed=1, gate_bias=1.0)
