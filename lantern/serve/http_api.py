"""`lantern serve`: Ollama- and OpenAI-compatible HTTP endpoints for the native LoopLM, and for grounded answers.

Raw model endpoints (the runtime, through the batching queue of `batcher.py`):
  Ollama  POST /api/generate, /api/chat (NDJSON streaming by default), GET /api/tags, POST /api/show, GET /api/version
  OpenAI  POST /v1/chat/completions (SSE with `stream`), /v1/completions, GET /v1/models
Each streamed piece carries `lantern: {"exit_step": n}`; the last one `lantern: {"mode", "exit_steps",
"avg_exit_steps"}`. DEEP/FAST per request with `lantern: {"mode": ...}`.

Grounded endpoint: the model name `grounded_model` (default `lantern`) on /v1/chat/completions and
/api/chat runs the whole answer loop over the knowledge base for the last user message (earlier
messages are the conversation): the reply is the verified answer with its citations, and
`lantern: {"status", "claims", "dropped", "sources"}` carries the claim tuples. While it works, a
stream sends one empty piece per loop stage (`lantern: {"stage": ...}`), so clients see progress.

Hardening: a body over `serve_max_body_kb` is a 413; malformed JSON, an unknown field or a bad
value a 400 in the API's own error shape; an unknown model a 404; an optional bearer token
(the environment variable named by `serve_token_env`) else 401. A client that disconnects
cancels its generation. Built on starlette (and served by uvicorn), no hand-written HTTP.

This module knows the two APIs' shapes; the model work is the runtime's and the loop's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lantern.serve.batcher import Batcher, Done, Piece
from lantern.serve.requests import (OllamaChat, OllamaGenerate, OllamaShow, OpenAIChat, OpenAICompletion, ollama_sampling,
                                    openai_sampling)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def served_name(model: str) -> str:
    """The name clients use: a folder's own name for a local snapshot, else the setting as given."""
    path = Path(model).expanduser()
    return path.name if path.is_dir() else model


class LanternAPI:
    def __init__(self, lm, settings, token: str | None = None, kb=None) -> None:
        self.lm = lm
        self.settings = settings
        self.name = served_name(settings.model)
        self.aliases = {self.name, settings.model}
        self.grounded = settings.grounded_model
        self.token = token
        self.kb = kb
        self.batcher = Batcher(lm, settings.serve_max_batch)
        self.started = now_iso()

    # --- the app --------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes = [
            Route("/", lambda r: Response("Lantern is running\n"), methods=["GET", "HEAD"]),
            Route("/api/version", self.version, methods=["GET"]),
            Route("/api/tags", self.tags, methods=["GET"]),
            Route("/api/show", self.show, methods=["POST"]),
            Route("/api/generate", self.ollama_generate, methods=["POST"]),
            Route("/api/chat", self.ollama_chat, methods=["POST"]),
            Route("/v1/models", self.openai_models, methods=["GET"]),
            Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
            Route("/v1/completions", self.openai_completions, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    async def _body(self, request: Request, model_type):
        """The request's JSON, size-limited and validated, or an ApiError."""
        limit = self.settings.serve_max_body_kb * 1024
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"request body over {self.settings.serve_max_body_kb} KB")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise ApiError(413, f"request body over {self.settings.serve_max_body_kb} KB")
        try:
            data = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"malformed JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object")
        try:
            return model_type.model_validate(data)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "body"
            message = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
            raise ApiError(400, f"{where}: {message}", param=where) from exc

    def _check_model(self, model: str, grounded_ok: bool) -> bool:
        """True when `model` is the grounded one; an ApiError 404 when it is no model served here."""
        if model == self.grounded and grounded_ok:
            return True
        if model in self.aliases or (model.split(":")[0] in self.aliases and model.endswith(":latest")):
            return False
        raise ApiError(404, f"model '{model}' not found; this server has {self.name!r}" + (f" and {self.grounded!r}" if grounded_ok else ""),
                       "not_found_error", "model")

    # --- Ollama -----------------------------------------------------------------------------------------
    async def version(self, request: Request) -> Response:
        from lantern import __version__

        return await self._guard(request, lambda: JSONResponse({"version": __version__}), ollama=True)

    def _model_entry(self, name: str, grounded: bool) -> dict[str, Any]:
        c = self.lm.config
        details = {"format": "safetensors", "family": "ouro", "families": ["ouro"], "parameter_size": f"{self._params() / 1e9:.2f}B",
                   "quantization_level": self.settings.quant if self.settings.quant != "none" else self.settings.dtype}
        if grounded:
            details |= {"family": "lantern", "families": ["lantern", "ouro"]}
        return {"name": name, "model": name, "modified_at": self.started, "size": self._bytes(), "digest": uuid.uuid5(uuid.NAMESPACE_URL, name).hex,
                "details": details | {"num_hidden_layers": c.num_hidden_layers, "loop_steps": c.num_steps}}

    def _params(self) -> int:
        return sum(p.numel() for p in self.lm.model.parameters())

    def _bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.lm.model.parameters())

    async def tags(self, request: Request) -> Response:
        return await self._guard(request, lambda: JSONResponse({"models": [self._model_entry(self.name, False),
                                                                           self._model_entry(self.grounded, True)]}), ollama=True)

    async def show(self, request: Request) -> Response:
        async def run():
            body = await self._body(request, OllamaShow)
            grounded = self._check_model(body.model or body.name or "", True)
            c = self.lm.config
            return JSONResponse({
                "modelfile": f"# served by lantern serve\nFROM {self.settings.model}\n", "parameters": f"num_predict {self.settings.max_new_tokens}",
                "template": "{{ chat template of the checkpoint }}", "details": self._model_entry(self.name, grounded)["details"],
                "model_info": {"general.architecture": "ouro", "ouro.block_count": c.num_hidden_layers, "ouro.loop_steps": c.num_steps,
                               "ouro.embedding_length": c.hidden_size, "ouro.context_length": c.max_position_embeddings,
                               "general.parameter_count": self._params()},
                "capabilities": ["completion"], "modified_at": self.started})
        return await self._guard(request, run, ollama=True)

    async def ollama_generate(self, request: Request) -> Response:
        async def run():
            body = await self._body(request, OllamaGenerate)
            self._check_model(body.model, False)
            sampling = ollama_sampling(body, self.settings.mode, self.settings.max_new_tokens)
            if body.raw:
                ids = self.lm.tokenizer.encode(body.prompt, add_special_tokens=False)
            else:
                messages = ([{"role": "system", "content": body.system}] if body.system else []) + [{"role": "user", "content": body.prompt}]
                ids = self.lm.chat_ids(messages)[0].tolist()
            job = self.batcher.submit(ids, sampling)
            shape = lambda piece, extra: {"response": piece} | extra  # noqa: E731
            return await self._ollama_reply(request, job, body.model, body.stream, shape, sampling.mode)
        return await self._guard(request, run, ollama=True)

    async def ollama_chat(self, request: Request) -> Response:
        async def run():
            body = await self._body(request, OllamaChat)
            messages = [{"role": m.role, "content": m.content} for m in body.messages]
            if self._check_model(body.model, True):
                return await self._grounded(request, messages, body.stream, body.lantern.mode if body.lantern else None, ollama=True,
                                            model=body.model)
            sampling = ollama_sampling(body, self.settings.mode, self.settings.max_new_tokens)
            job = self.batcher.submit(self.lm.chat_ids(messages)[0].tolist(), sampling)
            shape = lambda piece, extra: {"message": {"role": "assistant", "content": piece}} | extra  # noqa: E731
            return await self._ollama_reply(request, job, body.model, body.stream, shape, sampling.mode)
        return await self._guard(request, run, ollama=True)

    async def _ollama_reply(self, request, job, model: str, stream: bool, shape: Callable, mode: str) -> Response:
        def final(done: Done) -> dict[str, Any]:
            ns = lambda s: int(s * 1e9)  # noqa: E731
            return {"done": True, "done_reason": done.reason, "total_duration": ns(done.seconds), "load_duration": 0,
                    "prompt_eval_count": done.prompt_tokens, "prompt_eval_duration": ns(done.prompt_seconds), "eval_count": done.tokens,
                    "eval_duration": ns(done.seconds - done.prompt_seconds), "lantern": _depth(mode, done.exit_steps)}

        if not stream:
            text, done = await self._collect(request, job)
            return JSONResponse({"model": model, "created_at": now_iso()} | shape(text, {}) | final(done))

        async def lines() -> AsyncIterator[str]:
            async for item in self._pieces(request, job):
                head = {"model": model, "created_at": now_iso()}
                if isinstance(item, Piece):
                    yield json.dumps(head | shape(item.text, {"done": False, "lantern": {"exit_step": item.exit_step}})) + "\n"
                else:
                    yield json.dumps(head | shape("", {}) | final(item)) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    # --- OpenAI -----------------------------------------------------------------------------------------
    async def openai_models(self, request: Request) -> Response:
        created = int(time.time())
        return await self._guard(request, lambda: JSONResponse({"object": "list", "data": [
            {"id": self.name, "object": "model", "created": created, "owned_by": "lantern"},
            {"id": self.grounded, "object": "model", "created": created, "owned_by": "lantern"}]}), ollama=False)

    async def openai_chat(self, request: Request) -> Response:
        async def run():
            body = await self._body(request, OpenAIChat)
            if body.n not in (None, 1):
                raise ApiError(400, "n: only 1 choice per request is supported", param="n")
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
            if self._check_model(body.model, True):
                return await self._grounded(request, messages, body.stream, body.lantern.mode if body.lantern else None, ollama=False,
                                            model=body.model)
            sampling = openai_sampling(body, self.settings.mode, self.settings.max_new_tokens)
            job = self.batcher.submit(self.lm.chat_ids(messages)[0].tolist(), sampling)
            return await self._openai_reply(request, job, body, chat=True, mode=sampling.mode)
        return await self._guard(request, run, ollama=False)

    async def openai_completions(self, request: Request) -> Response:
        async def run():
            body = await self._body(request, OpenAICompletion)
            self._check_model(body.model, False)
            if body.n not in (None, 1) or isinstance(body.prompt, list) and len(body.prompt) != 1:
                raise ApiError(400, "one prompt and one choice per request are supported", param="prompt")
            prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
            sampling = openai_sampling(body, self.settings.mode, self.settings.max_new_tokens)
            job = self.batcher.submit(self.lm.tokenizer.encode(prompt, add_special_tokens=False), sampling)
            return await self._openai_reply(request, job, body, chat=False, mode=sampling.mode)
        return await self._guard(request, run, ollama=False)

    async def _openai_reply(self, request, job, body, chat: bool, mode: str) -> Response:
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        kind = "chat.completion" if chat else "text_completion"

        def usage(done: Done) -> dict[str, int]:
            return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.tokens, "total_tokens": done.prompt_tokens + done.tokens}

        if not body.stream:
            text, done = await self._collect(request, job)
            choice = {"index": 0, "finish_reason": done.reason}
            choice |= {"message": {"role": "assistant", "content": text}} if chat else {"text": text, "logprobs": None}
            return JSONResponse({"id": ident, "object": kind, "created": created, "model": body.model, "choices": [choice],
                                 "usage": usage(done), "lantern": _depth(mode, done.exit_steps)})

        def chunk(piece: str | None, finish: str | None, extra: dict[str, Any]) -> str:
            if chat:
                choice = {"index": 0, "delta": {} if piece is None else {"content": piece}, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish}
            data = {"id": ident, "object": f"{kind}.chunk" if chat else kind, "created": created, "model": body.model, "choices": [choice]}
            return f"data: {json.dumps(data | extra)}\n\n"

        include_usage = bool((body.stream_options or {}).get("include_usage"))

        async def events() -> AsyncIterator[str]:
            if chat:
                yield f"data: {json.dumps({'id': ident, 'object': kind + '.chunk', 'created': created, 'model': body.model, 'choices': [{'index': 0, 'delta': {'role': 'assistant', 'content': ''}, 'finish_reason': None}]})}\n\n"
            async for item in self._pieces(request, job):
                if isinstance(item, Piece):
                    yield chunk(item.text, None, {"lantern": {"exit_step": item.exit_step}})
                else:
                    yield chunk(None, item.reason, {"lantern": _depth(mode, item.exit_steps)} | ({"usage": usage(item)} if include_usage else {}))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    # --- shared ------------------------------------------------------------------------------------------
    async def _pieces(self, request: Request, job) -> AsyncIterator[Piece | Done]:
        """The job's pieces as they come; a client that goes away cancels the job."""
        try:
            while True:
                item = await job.queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if isinstance(item, Done):
                    return
        finally:
            job.cancelled.set()  # a no-op after Done; stops the decoding for a client that left

    async def _collect(self, request: Request, job) -> tuple[str, Done]:
        """The whole text of a reply that is not streamed; a client that goes away cancels the job."""
        text = ""
        async for item in _until_disconnect(request, self._pieces(request, job)):
            if isinstance(item, Piece):
                text += item.text
            else:
                return text, item
        raise ApiError(500, "generation ended without a result", "server_error")

    async def _grounded(self, request: Request, messages: list[dict[str, str]], stream: bool, mode: str | None, ollama: bool,
                        model: str) -> Response:
        """The whole answer loop for the last user message; earlier messages are the conversation."""
        from lantern.events import public_answer
        from lantern.loop.aio import aevents
        from lantern.records import Turn

        asked = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if not asked:
            raise ApiError(400, "messages: the grounded model needs a user message to answer", param="messages")
        question = messages[asked[-1]]["content"]
        history = [Turn(role=m["role"], text=m["content"]) for m in messages[: asked[-1]] if m["role"] in ("user", "assistant")]
        settings = self.settings.model_copy(update={"mode": mode}) if mode else self.settings

        async def stages() -> AsyncIterator:
            """The loop's events; leaving early (a client that went away) stops it within a token."""
            stream = aevents(question, settings, history, kb=self.kb)
            try:
                async for event in stream:
                    yield event
            except Exception as exc:
                raise ApiError(500, str(exc), "server_error") from exc
            finally:
                await stream.aclose()

        def extension(answer) -> dict[str, Any]:
            data = public_answer(answer)
            return {"status": data["status"], "claims": data["claims"], "dropped": data["dropped"], "sources": data["sources"],
                    "notices": data["notices"], "mode": data["mode"], "model": data["model"], "backend": data["backend"]}

        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not stream:
            answer = None
            async for event in _until_disconnect(request, stages()):
                answer = getattr(event, "answer", answer)
            if answer is None:
                raise ApiError(499, "the client went away before the answer was finished", "cancelled")
            if ollama:
                return JSONResponse({"model": model, "created_at": now_iso(), "message": {"role": "assistant", "content": answer.answer},
                                     "done": True, "done_reason": "stop", "lantern": extension(answer)})
            return JSONResponse({"id": ident, "object": "chat.completion", "created": created, "model": model,
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
                                 "lantern": extension(answer)})

        async def body() -> AsyncIterator[str]:
            async for event in stages():
                if event.kind == "stage" and event.state == "started":
                    piece, extra = "", {"stage": event.name}
                elif event.kind == "answer":
                    piece, extra = event.answer.answer, None
                else:
                    continue
                if ollama:
                    yield json.dumps({"model": model, "created_at": now_iso(), "message": {"role": "assistant", "content": piece},
                                      "done": False, "lantern": extra or {}}) + "\n"
                    if extra is None:
                        yield json.dumps({"model": model, "created_at": now_iso(), "message": {"role": "assistant", "content": ""},
                                          "done": True, "done_reason": "stop", "lantern": extension(event.answer)}) + "\n"
                else:
                    data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}], "lantern": extra or {}}
                    yield f"data: {json.dumps(data)}\n\n"
                    if extra is None:
                        data["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
                        data["lantern"] = extension(event.answer)
                        yield f"data: {json.dumps(data)}\n\n"
            if not ollama:
                yield "data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="application/x-ndjson" if ollama else "text/event-stream")

    async def _guard(self, request: Request, run: Callable, ollama: bool) -> Response:
        """Run a handler; ApiErrors become the API's own error shape."""
        try:
            if self.token:  # every endpoint, every method
                import hmac

                if not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {self.token}"):
                    raise ApiError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'", "authentication_error")
            result = run()
            return await result if asyncio.iscoroutine(result) else result
        except ApiError as exc:
            if ollama:
                return JSONResponse({"error": exc.message}, status_code=exc.status)
            return JSONResponse({"error": {"message": exc.message, "type": exc.kind, "param": exc.param, "code": exc.status}},
                                status_code=exc.status)


async def _cancel_on_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client goes away (for replies that are not streamed)."""
    while not cancel.is_set():
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return


async def _until_disconnect(request: Request, items: AsyncIterator) -> AsyncIterator:
    """`items`, until the client goes away (for replies that are not streamed, where no write fails)."""
    gone = threading.Event()
    watcher = asyncio.ensure_future(_cancel_on_disconnect(request, gone))
    try:
        async for item in items:
            yield item
            if gone.is_set():
                return
    finally:
        watcher.cancel()
        await items.aclose()


def _depth(mode: str, steps: list[int]) -> dict[str, Any]:
    return {"mode": mode, "exit_steps": steps, "avg_exit_steps": round(sum(steps) / len(steps), 4) if steps else None}
