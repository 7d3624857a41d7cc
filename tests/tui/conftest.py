"""Fixtures for the chat TUI tests (the knowledge base and the tiny checkpoint come from tests/conftest.py)."""

import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"  # Textual runs on asyncio
