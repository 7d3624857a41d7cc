"""The request bodies `lantern serve` accepts, as the Ollama and OpenAI APIs document them.

Every documented field is accepted (most are optional and many are ignored: keep_alive, format,
logit_bias...); a field neither API documents is a 400, so a typo (`max_token`) is never silently
dropped. Sampling options map onto the runtime's: num_predict / max_tokens, temperature, top_p,
top_k, stop, seed, repeat_penalty / repetition_penalty. Lantern's own extension is one object,
`lantern: {"mode": "deep" | "fast"}`, accepted by every endpoint (Ollama clients may also put
`lantern_mode` in `options`).

This module knows nothing about models or HTTP.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LanternOptions(Strict):
    mode: Literal["deep", "fast"] | None = None


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # images, tool_calls, thinking, tool_name...
    role: str
    content: str = ""


class OllamaOptions(BaseModel):
    """Ollama's `options` (a model parameter set; parameters Lantern has no use for are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")
    num_predict: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | str | None = None
    seed: int | None = None
    repeat_penalty: float | None = None
    lantern_mode: Literal["deep", "fast"] | None = None


class _OllamaCommon(Strict):
    model: str
    options: OllamaOptions | None = None
    stream: bool = True
    format: Any = None
    keep_alive: Any = None
    think: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    lantern: LanternOptions | None = None


class OllamaGenerate(_OllamaCommon):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None


class OllamaChat(_OllamaCommon):
    messages: list[OllamaMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


class OllamaShow(Strict):
    model: str | None = None
    name: str | None = None
    verbose: bool | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, tool_call_id, refusal, audio...
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")
        return self.content or ""


class _OpenAICommon(Strict):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = None
    n: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: list[str] | str | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    logprobs: Any = None
    user: str | None = None
    lantern: LanternOptions | None = None


class OpenAIChat(_OpenAICommon):
    messages: list[OpenAIMessage]
    max_completion_tokens: int | None = Field(None, ge=1)
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    service_tier: str | None = None
    store: bool | None = None
    metadata: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    modalities: list[str] | None = None
    prediction: Any = None
    audio: Any = None
    web_search_options: Any = None
    verbosity: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None


class OpenAICompletion(_OpenAICommon):
    prompt: str | list[str]
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None


class Sampling(BaseModel):
    """What one raw generation request asks of the runtime."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    repetition_penalty: float = 1.0
    mode: Literal["deep", "fast"] = "deep"

    def batch_key(self) -> tuple:
        """Requests with equal keys decode in one batch (the runtime's options are batch-wide). Seeded
        sampling never shares a batch: its random stream must be its own."""
        unique = id(self) if (self.seed is not None and self.temperature > 0) else None
        return (self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.mode, self.seed, unique)


def _stops(stop: list[str] | str | None) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


def ollama_sampling(body: _OllamaCommon, default_mode: str, default_tokens: int) -> Sampling:
    o = body.options or OllamaOptions()
    mode = (body.lantern.mode if body.lantern else None) or o.lantern_mode or default_mode
    return Sampling(max_new_tokens=o.num_predict if o.num_predict and o.num_predict > 0 else default_tokens,
                    temperature=0.8 if o.temperature is None else o.temperature, top_p=o.top_p or 1.0, top_k=o.top_k or 0,
                    stop=_stops(o.stop), seed=o.seed, repetition_penalty=o.repeat_penalty or 1.0, mode=mode)


def openai_sampling(body: _OpenAICommon, default_mode: str, default_tokens: int) -> Sampling:
    limit = getattr(body, "max_completion_tokens", None) or body.max_tokens or default_tokens
    mode = (body.lantern.mode if body.lantern else None) or default_mode
    return Sampling(max_new_tokens=limit, temperature=1.0 if body.temperature is None else body.temperature, top_p=body.top_p or 1.0,
                    top_k=body.top_k or 0, stop=_stops(body.stop), seed=body.seed,
                    repetition_penalty=body.repetition_penalty or 1.0, mode=mode)
