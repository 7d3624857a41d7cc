"""Shared fixtures: every test runs with its own LANTERN_HOME and an offline hub."""

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
