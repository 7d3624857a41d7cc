"""The answer loop's events for asyncio code: `async for event in aevents(...)`.

The loop computes in a worker thread of its own (it runs a model and blocking searches); its
events are handed to the caller's event loop as they come. When the caller stops iterating, is
cancelled (an MCP client's cancellation, an HTTP client that went away) or fails, the loop's
cancel event is set, so generation stops within a token. An exception inside the loop is
raised in the caller's task. This module knows nothing about what the events mean.
"""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator

from lantern.loop.run import events

_END = object()


async def aevents(question: str, settings, history=None, **options) -> AsyncIterator:
    """`lantern.loop.events` for a coroutine; accepts the same arguments (its `cancel` is made here)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancel = threading.Event()

    def work() -> None:
        try:
            for event in events(question, settings, history, cancel, **options):
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as exc:  # noqa: BLE001 (raised again in the caller's task)
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    threading.Thread(target=work, name="lantern-answer", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
