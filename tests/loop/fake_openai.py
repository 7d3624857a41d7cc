"""A real HTTP server on localhost that speaks the OpenAI chat-completions wire format (SSE
included) from a script, for testing the `openai` backend without a network or a model.

Each request takes the next scripted reply: a string (streamed as content deltas, a few
characters each), {"tool": name, "arguments": {...}} (streamed as a native tool_calls delta), or
a function of the request body returning either.
Every request body is recorded. `refuse_tools=True` answers 400 to requests that carry `tools`,
as some servers do.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


class FakeOpenAI:
    def __init__(self, replies: list[Any], model: str = "fake-model", refuse_tools: bool = False, delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.model = model
        self.refuse_tools = refuse_tools
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"]),
                                     Route("/v1/models", self.models, methods=["GET"])])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started and time.time() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    async def models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "test"}]})

    async def chat(self, request: Request):
        body = await request.json()
        self.requests.append(body)
        if body.get("model") != self.model:
            return JSONResponse({"error": {"message": f"model {body.get('model')!r} not found", "type": "not_found"}}, status_code=404)
        if self.refuse_tools and body.get("tools"):
            return JSONResponse({"error": {"message": "tools are not supported by this server", "type": "invalid_request"}}, status_code=400)
        reply = self.replies.pop(0)
        if callable(reply):
            reply = reply(body)
        if not body.get("stream"):
            message = {"role": "assistant", "content": reply} if isinstance(reply, str) else {
                "role": "assistant", "content": None, "tool_calls": [{"id": "call_0", "type": "function",
                                                                     "function": {"name": reply["tool"], "arguments": json.dumps(reply["arguments"])}}]}
            return JSONResponse({"id": "c", "object": "chat.completion", "created": 0, "model": self.model,
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": self.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n"

        async def events():
            import asyncio

            yield chunk({"role": "assistant", "content": ""})
            if isinstance(reply, str):
                for i in range(0, len(reply), 4):
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    yield chunk({"content": reply[i: i + 4]})
            else:
                arguments = json.dumps(reply["arguments"])
                yield chunk({"tool_calls": [{"index": 0, "id": "call_0", "type": "function", "function": {"name": reply["tool"], "arguments": ""}}]})
                for i in range(0, len(arguments), 5):
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i: i + 5]}}]})
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
