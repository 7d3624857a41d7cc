"""Any OpenAI-compatible chat endpoint as a reasoner (`backend = "openai"`).

vLLM, llama.cpp's server, Ollama's `/v1`, `lantern serve`, or a hosted API: the official `openai`
client speaks to `openai_base_url` with the model named by the `model` setting and the API key
read from the environment variable named by `openai_api_key_env`. Answers stream over SSE; tools
go over as native function definitions (`tools` / `tool_calls`), and when an endpoint refuses
them (HTTP 400 naming tools) the text protocol of prompts/answer.toml is used from then on.
Reasoning text that servers send apart (`reasoning_content` / `reasoning`) is thinking.
Timeouts and retries are the client's (settings `request_timeout`, `request_retries`); an endpoint
that is down, refuses the key, or does not know the model is one BackendError line.

This module knows nothing about retrieval or verification; it has no exit steps to report.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator

from lantern.backends.text_stream import Piece, ReaderStream
from lantern.errors import BackendError
from lantern.loop.reason import build_messages
from lantern.prompts import load_prompts
from lantern.records import Draft, Evidence, Question, RejectedCall, ToolCall
from lantern.toolcalls.validate import function_call


class OpenAIReasoner:
    backend = "openai"
    rewrites = True
    uses_tools = True

    def __init__(self, settings) -> None:
        from openai import OpenAI

        self.settings = settings
        self.prompts = load_prompts("answer", settings.prompts_dir)
        self.name = settings.model
        self.base_url = settings.openai_base_url
        self.native_tools = True
        key = os.environ.get(settings.openai_api_key_env, "") if settings.openai_api_key_env else ""
        self.client = OpenAI(base_url=self.base_url, api_key=key or "not-needed", timeout=settings.request_timeout,
                             max_retries=settings.request_retries)

    def judge(self, template: str, exit_threshold: float):
        return None  # an endpoint gives no calibrated yes/no probabilities

    def _open(self, messages: list[dict[str, str]], tools: list[dict[str, Any]] | None):
        import openai

        request: dict[str, Any] = dict(model=self.name, messages=messages, stream=True, max_tokens=self.settings.max_new_tokens,
                                       temperature=self.settings.temperature)
        if tools and self.native_tools:
            request["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                                  "parameters": t["input_schema"]}} for t in tools]
        try:
            return self.client.chat.completions.create(**request)
        except openai.BadRequestError as exc:
            if "tools" in request and "tool" in str(exc).lower():
                self.native_tools = False  # this endpoint takes no function definitions: text protocol from now on
                return None
            raise BackendError(f"the endpoint at {self.base_url} refused the request (400: {_detail(exc)}).") from exc
        except openai.AuthenticationError as exc:
            raise BackendError(f"the endpoint at {self.base_url} refused the API key (401); put the key in the environment "
                               f"variable {self.settings.openai_api_key_env}.") from exc
        except openai.NotFoundError as exc:
            raise BackendError(f"the endpoint at {self.base_url} does not know model {self.name!r} (404: {_detail(exc)}); "
                               f"set model to one it serves (GET {self.base_url.rstrip('/')}/models lists them).") from exc
        except openai.APITimeoutError as exc:
            raise BackendError(f"the endpoint at {self.base_url} did not answer within {self.settings.request_timeout:g} s "
                               f"({self.settings.request_retries} retries); check the server or raise request_timeout.") from exc
        except openai.APIConnectionError as exc:
            raise BackendError(f"cannot reach the OpenAI-compatible endpoint at {self.base_url} ({_detail(exc)}); "
                               f"start the server or set openai_base_url.") from exc
        except openai.APIStatusError as exc:
            raise BackendError(f"the endpoint at {self.base_url} failed ({exc.status_code}: {_detail(exc)}).") from exc

    def stream(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
               tools: list[dict[str, Any]] | None = None, cancel: threading.Event | None = None) -> Iterator[Piece | Draft]:
        import openai

        response = None
        for _ in range(2):  # a second time only when the endpoint refused native tools
            messages = build_messages(self.prompts, question, evidence, feedback, None if (tools and self.native_tools) else tools)
            response = self._open(messages, tools)
            if response is not None:
                break
        reader = ReaderStream(self.prompts["tool_call_prefix"])
        native: dict[int, dict[str, str]] = {}
        cancelled, tokens = False, 0
        try:
            for chunk in response:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                extra = delta.model_extra or {}
                thinking = extra.get("reasoning_content") or extra.get("reasoning")
                if thinking:
                    yield Piece(thinking, "thinking")
                    reader.thinking.append(thinking)
                if delta.content:
                    tokens += 1
                    yield from reader.feed(delta.content)
                for call in delta.tool_calls or []:
                    slot = native.setdefault(call.index, {"name": "", "arguments": ""})
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
        except openai.APIError as exc:
            raise BackendError(f"the stream from {self.base_url} broke off ({_detail(exc)}); try again.") from exc
        finally:
            response.close()
        yield from reader.finish()
        text, thinking_text, calls, rejected = reader.result()
        for slot in native.values():
            parsed = function_call(slot["name"], slot["arguments"]) if slot["name"] else RejectedCall(raw=slot["arguments"], error="a tool call without a name")
            (calls if isinstance(parsed, ToolCall) else rejected).append(parsed)
        yield Draft(text=text, thinking=thinking_text, tool_calls=[] if cancelled else calls, rejected_calls=[] if cancelled else rejected,
                    model=self.name, tokens=tokens, cancelled=cancelled)

    def reachable(self) -> tuple[bool, str]:
        """(ok, detail) from listing the endpoint's models, for `lantern doctor`."""
        try:
            models = [m.id for m in self.client.with_options(timeout=5, max_retries=0).models.list()]
        except Exception as exc:
            return False, f"{self.base_url}: not reachable ({_detail(exc)})"
        known = self.name in models
        return known, f"{self.base_url}: serves {', '.join(models[:5]) or 'no models'}" + ("" if known else f"; not {self.name!r}")


def _detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        if inner.get("message"):
            return str(inner["message"])[:200]
    cause = exc.__cause__ or exc.__context__
    text = str(exc) if str(exc) and str(exc) != "Connection error." else f"{exc} {cause or ''}".strip()
    return text[:200]
