"""Plain completion from any backend: chat messages in, text out, with its token count and cost.

`complete(settings, messages, max_tokens, stop=None, tools=None)` dispatches on the `backend`
setting and reuses each backend's loader or client: the one loaded LoopLM (`ouro.loaded`, under
`ouro.model_lock`), the one loaded transformers model (`hf._load`), or the `openai` client
(non-streaming, reading `usage`). It is what `lantern eval` uses for the reasoning and tool-call
suites, where the answer loop (retrieval, verification) is not what is measured.

Cost proxies that hold across machines come with each Completion:
- ouro (measured): `exit_steps` per generated token; weight and KV bytes read follow
  `lantern.runtime.bench.decode_run`: prefill reads the layer weights once per loop step and the
  head once (it yields the first token), and each later token reads exit_steps x (layer weights +
  the KV cache at its context) + the head. FLOPs: 2 x the parameters each token touches (exit_steps
  x layer parameters + head) plus attention over its context, prefill likewise for every prompt token;
- hf (estimated, `cost_note` says so): 2 x all parameters per token; bytes: all parameter bytes per
  decoded token plus the KV cache from config.json when it names layers, heads and head size;
- openai: tokens from `usage` only; bytes and FLOPs unknown (None).

This module knows nothing about retrieval, verification or scoring.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any

from lantern.records import RejectedCall, ToolCall


@dataclass
class Completion:
    text: str
    tokens: int
    """Generated tokens (the endpoint's `completion_tokens` for openai)."""
    exit_steps: list[int] | None
    """Loop steps run for each generated token, 1-based (ouro only)."""
    seconds: float
    prompt_tokens: int | None
    model: str = ""
    backend: str = ""
    weight_bytes: float | None = None
    """Weight and KV-cache bytes read to produce this completion (None: unknown)."""
    flops: float | None = None
    cost_note: str = ""
    tool_calls: list[ToolCall | RejectedCall] = field(default_factory=list)
    """Native function calls (openai with `tools`); other backends write calls in the text."""


@dataclass(frozen=True)
class LoopCost:
    """What one loop step and the head of a LoopLM read and compute."""

    layer_bytes: int
    """All layer weights, final norm and exit gate: read once per loop step."""
    head_bytes: int
    kv_bytes_per_position: int
    """Keys and values of one position in one layer (both tensors)."""
    num_layers: int
    num_steps: int
    layer_params: int
    head_params: int
    attention_width: int
    """num_attention_heads x head_dim: the query width attending over the context."""


def loop_cost_of(lm) -> LoopCost:
    """The LoopCost of a loaded LoopLM (sizes as `lantern.runtime.bench` counts them)."""
    from lantern.runtime.bench import weight_bytes

    inner, config = lm.model.model, lm.config

    def params(module) -> int:
        return sum(t.numel() for t in list(module.parameters()) + list(module.buffers()))

    element = inner.embed_tokens.weight.element_size()
    return LoopCost(
        layer_bytes=weight_bytes(inner.layers) + weight_bytes(inner.norm) + weight_bytes(inner.early_exit_gate),
        head_bytes=weight_bytes(lm.model.lm_head),
        kv_bytes_per_position=2 * config.num_key_value_heads * config.head_dim * element,
        num_layers=config.num_hidden_layers, num_steps=config.num_steps,
        layer_params=params(inner.layers) + params(inner.norm) + params(inner.early_exit_gate),
        head_params=params(lm.model.lm_head),
        attention_width=config.num_attention_heads * config.head_dim,
    )


def loop_cost(cost: LoopCost, prompt_tokens: int, exit_steps: list[int]) -> tuple[float, float]:
    """(bytes read, FLOPs) of a prefill of `prompt_tokens` and decoding tokens that ran `exit_steps`
    loop steps each (the first token comes out of the prefill, as in runtime/bench.py)."""
    if not exit_steps:
        return 0.0, 0.0
    attention = lambda context, steps: 4 * cost.num_layers * steps * cost.attention_width * context  # noqa: E731 (QK^T and AV)
    read = cost.num_steps * cost.layer_bytes + cost.head_bytes
    flops = 2 * prompt_tokens * cost.num_steps * cost.layer_params + 2 * cost.head_params
    flops += sum(attention(position + 1, cost.num_steps) for position in range(prompt_tokens))
    for i, steps in enumerate(exit_steps[1:]):
        context = prompt_tokens + i + 1
        read += steps * (cost.layer_bytes + cost.num_layers * cost.kv_bytes_per_position * context) + cost.head_bytes
        flops += 2 * (steps * cost.layer_params + cost.head_params) + attention(context, steps)
    return float(read), float(flops)


def complete(settings, messages: list[dict[str, str]], max_tokens: int, stop: list[str] | None = None,
             tools: list[dict[str, Any]] | None = None) -> Completion:
    """One completion of `messages` by the configured backend, greedy unless `temperature` is set.
    `tools` (name, description, input_schema) go over natively on openai; ouro and hf ignore them
    (describe tools in the messages instead). Text stops before the first `stop` string."""
    if settings.backend == "ouro":
        done = _ouro(settings, messages, max_tokens, stop)
    elif settings.backend == "hf":
        done = _hf(settings, messages, max_tokens, stop)
    else:
        done = _openai(settings, messages, max_tokens, stop, tools)
    done.text = cut_at_stop(done.text, stop)
    return done


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """`text` before the first of the `stop` strings it contains."""
    cut = min((text.find(s) for s in stop or [] if s and s in text), default=-1)
    return text[:cut] if cut >= 0 else text


# --- ouro ----------------------------------------------------------------------------------------


def _ouro(settings, messages, max_tokens: int, stop) -> Completion:
    from lantern.backends import ouro
    from lantern.runtime.locate import require

    path = require(settings.model)
    lm = ouro.loaded(str(path), settings.device, settings.dtype, settings.quant, settings.threads)
    ids = lm.chat_ids(messages)
    started = time.perf_counter()
    pieces, steps = [], []
    with ouro.model_lock(lm):
        for token in lm.generate(ids, max_new_tokens=max_tokens, mode=settings.mode, exit_threshold=settings.exit_threshold,
                                 temperature=settings.temperature, stop=stop):
            pieces.append(token.text)
            steps.append(token.exit_step + 1)
    seconds = time.perf_counter() - started
    read, flops = loop_cost(_cost_of(lm), ids.shape[1], steps)
    return Completion(text="".join(pieces), tokens=len(steps), exit_steps=steps, seconds=seconds, prompt_tokens=int(ids.shape[1]),
                      model=settings.model, backend="ouro", weight_bytes=read, flops=flops,
                      cost_note="measured exit steps; bytes and FLOPs from the checkpoint's shapes")


@functools.lru_cache(maxsize=2)
def _cost_of(lm) -> LoopCost:
    return loop_cost_of(lm)


# --- hf ------------------------------------------------------------------------------------------


def _hf(settings, messages, max_tokens: int, stop) -> Completion:
    import torch

    from lantern.backends import hf

    path = hf.resolve(settings.model)
    with hf._loading:
        model, tokenizer, lock = hf._load(str(path), settings.device, settings.dtype)
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    inputs = {k: v.to(model.device) for k, v in encoded.items()}
    greedy = settings.temperature <= 0
    options = dict(inputs, max_new_tokens=max_tokens, do_sample=not greedy,
                   pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    options.update(temperature=None, top_p=None, top_k=None) if greedy else options.update(temperature=settings.temperature)
    if stop:
        options.update(stop_strings=list(stop), tokenizer=tokenizer)
    started = time.perf_counter()
    with lock, torch.inference_mode():
        out = model.generate(**options)
    seconds = time.perf_counter() - started
    prompt = int(inputs["input_ids"].shape[-1])
    new = out[0, prompt:]
    tokens = int(new.shape[-1])
    read, flops, note = _dense_estimate(model, prompt, tokens)
    return Completion(text=tokenizer.decode(new, skip_special_tokens=True), tokens=tokens, exit_steps=None, seconds=seconds,
                      prompt_tokens=prompt, model=settings.model, backend="hf", weight_bytes=read, flops=flops, cost_note=note)


def _dense_estimate(model, prompt: int, tokens: int) -> tuple[float | None, float, str]:
    """(bytes, FLOPs, note) estimated for a dense transformers model (see the module docstring)."""
    n_params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    flops = 2.0 * n_params * (prompt + tokens)
    config = model.config
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_key_value_heads", None) or getattr(config, "num_attention_heads", None)
    head_dim = getattr(config, "head_dim", None) or (config.hidden_size // config.num_attention_heads
                                                     if getattr(config, "hidden_size", None) and getattr(config, "num_attention_heads", None) else None)
    if not (layers and heads and head_dim) or tokens == 0:
        return None, flops, "estimate: FLOPs = 2 x parameters per token; bytes unknown (config lacks layer/head sizes)"
    element = next(model.parameters()).element_size()
    kv = 2 * layers * heads * head_dim * element
    read = param_bytes + sum(param_bytes + kv * (prompt + i + 1) for i in range(tokens - 1))
    return float(read), flops, "estimate: FLOPs = 2 x parameters per token; bytes = all parameters per token + KV cache"


# --- openai --------------------------------------------------------------------------------------


def _openai(settings, messages, max_tokens: int, stop, tools) -> Completion:
    import openai

    from lantern.backends.openai_chat import _detail
    from lantern.errors import BackendError
    from lantern.toolcalls.validate import function_call

    key = os.environ.get(settings.openai_api_key_env, "") if settings.openai_api_key_env else ""
    client = _client(settings.openai_base_url, key, settings.request_timeout, settings.request_retries)
    request: dict[str, Any] = dict(model=settings.model, messages=messages, max_tokens=max_tokens, temperature=settings.temperature)
    if stop:
        request["stop"] = list(stop)[:4]  # the API takes at most four
    if tools:
        request["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                              "parameters": t["input_schema"]}} for t in tools]
    where = settings.openai_base_url
    started = time.perf_counter()
    try:
        response = client.chat.completions.create(**request)
    except openai.AuthenticationError as exc:
        raise BackendError(f"the endpoint at {where} refused the API key (401); put the key in the environment variable "
                           f"{settings.openai_api_key_env}.") from exc
    except openai.NotFoundError as exc:
        raise BackendError(f"the endpoint at {where} does not know model {settings.model!r} (404: {_detail(exc)}).") from exc
    except openai.APITimeoutError as exc:
        raise BackendError(f"the endpoint at {where} did not answer within {settings.request_timeout:g} s; raise request_timeout.") from exc
    except openai.APIConnectionError as exc:
        raise BackendError(f"cannot reach the OpenAI-compatible endpoint at {where} ({_detail(exc)}); start the server or "
                           f"pass --endpoint.") from exc
    except openai.APIStatusError as exc:
        raise BackendError(f"the endpoint at {where} failed ({exc.status_code}: {_detail(exc)}).") from exc
    seconds = time.perf_counter() - started
    message = response.choices[0].message if response.choices else None
    calls = [function_call(c.function.name, c.function.arguments) for c in (getattr(message, "tool_calls", None) or [])
             if getattr(c, "function", None) is not None]
    usage = response.usage
    text = (message.content or "") if message is not None else ""
    return Completion(text=text, tokens=int(getattr(usage, "completion_tokens", 0) or 0), exit_steps=None, seconds=seconds,
                      prompt_tokens=getattr(usage, "prompt_tokens", None), model=settings.model, backend="openai",
                      cost_note="tokens from the endpoint's usage; bytes and FLOPs unknown", tool_calls=calls)


@functools.lru_cache(maxsize=4)
def _client(base_url: str, key: str, timeout: float, retries: int):
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=timeout, max_retries=retries)
