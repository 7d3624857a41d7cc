"""All three reasoning backends answer the same question end to end, without a network: the native
runtime on a tiny random Ouro checkpoint, `hf` on a tiny random Llama written by transformers
itself, and `openai` against a real HTTP server on localhost speaking the OpenAI wire format."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loop"))
from fake_openai import FakeOpenAI  # noqa: E402
from scripted import DOCS, ROOT, calculator_settings  # noqa: E402

from lantern.errors import BackendError, ModelNotFound  # noqa: E402
from lantern.loop import answer, events  # noqa: E402
from lantern.settings import load_settings  # noqa: E402

QUESTION = "When does Ouro stop looping?"
GOLD = "The model stops looping once the cumulative exit probability reaches the threshold"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lantern.runtime.testing import write_tokenizer

    path = tmp_path_factory.mktemp("hf") / "tiny-llama"
    path.mkdir()
    write_tokenizer(path, 512)
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=0, eos_token_id=2, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def test_native_ouro_backend(kb, tmp_path):
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ouro", "tiny", seed=3)
    stream = list(events(QUESTION, load_settings({"model": str(checkpoint), "dtype": "float32", "max_new_tokens": 16}), kb=kb))
    result = stream[-1].answer
    assert result.backend == "ouro" and result.model == str(checkpoint)
    assert [e.exit_step for e in stream if e.kind == "token"] and all(e.exit_step for e in stream if e.kind == "token")


def test_a_thinking_checkpoint_streams_thinking_not_tokens(kb, tmp_path):
    """A Thinking variant's chat template opens <think>: what it writes before </think> is thinking."""
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ouro-thinking", "tiny", seed=3, thinking=True)
    settings = load_settings({"model": str(checkpoint), "dtype": "float32", "max_new_tokens": 12, "converge_rounds": 0})
    stream = list(events(QUESTION, settings, kb=kb))
    thinking = "".join(e.text for e in stream if e.kind == "thinking")
    assert thinking and "</think>" not in thinking  # random weights never close it: all of it is thinking
    assert not [e for e in stream if e.kind == "token"] and stream[-1].answer.status == "not_in_kb"


def test_hf_backend_streams_a_transformers_model(kb, tiny_llama):
    settings = load_settings({"backend": "hf", "model": str(tiny_llama), "dtype": "float32", "max_new_tokens": 16, "converge_rounds": 0})
    stream = list(events(QUESTION, settings, kb=kb))
    result = stream[-1].answer
    tokens = [e for e in stream if e.kind == "token"]
    assert result.backend == "hf" and result.model == str(tiny_llama) and result.notices == []
    assert tokens and all(e.exit_step is None for e in tokens) and "reason" in result.timings
    # What was streamed is what was verified: the claims are the streamed text's sentences.
    streamed = " ".join("".join(e.text for e in tokens).split())
    assert all(c.claim.rstrip(".")[:10] in streamed for c in result.claims + result.dropped)


def test_hf_backend_cancels_within_a_token(kb, tiny_llama):
    import threading

    settings = load_settings({"backend": "hf", "model": str(tiny_llama), "dtype": "float32", "max_new_tokens": 300})
    cancel = threading.Event()
    seen = []
    for event in events(QUESTION, settings, cancel=cancel, kb=kb):
        seen.append(event)
        if event.kind == "token" and sum(e.kind == "token" for e in seen) == 2:
            cancel.set()
    assert seen[-1].answer.status == "cancelled" and sum(e.kind == "token" for e in seen) <= 4


def test_hf_backend_with_a_missing_folder_is_a_one_line_error(kb, tmp_path):
    with pytest.raises(ModelNotFound, match="backend hf: no transformers model"):
        answer(QUESTION, load_settings({"backend": "hf", "model": str(tmp_path / "nothing")}), kb=kb)


def test_openai_backend_streams_over_sse(kb):
    reply = f"{GOLD} [1]."
    with FakeOpenAI([reply]) as server:
        settings = load_settings({"backend": "openai", "model": "fake-model", "openai_base_url": server.base_url})
        stream = list(events(QUESTION, settings, kb=kb))
    result = stream[-1].answer
    assert result.backend == "openai" and result.model == "fake-model" and result.status == "answered"
    assert len([e for e in stream if e.kind == "token"]) > 5  # streamed in pieces, not one block
    assert result.answer == reply and result.claims[0].source.endswith("ouro.md")
    request = server.requests[0]
    assert request["stream"] is True and request["model"] == "fake-model" and "Passages:" in request["messages"][1]["content"]


def cite_tool(body, sentence):
    """The reply citing the tool result's passage number, read from the prompt the model was sent."""
    import re

    number = re.search(r"\[(\d+)\] \(tool:calculate", body["messages"][-1]["content"]).group(1)
    return f"{sentence} [{number}]."


def test_openai_backend_uses_native_tool_calls(kb):
    replies = [{"tool": "calculate", "arguments": {"expression": "4 * 24"}}, lambda body: cite_tool(body, "4 * 24 is 96")]
    with FakeOpenAI(replies) as server:
        settings = calculator_settings(backend="openai", model="fake-model", openai_base_url=server.base_url)
        stream = list(events("What is 4 * 24?", settings, kb=kb))
    first = server.requests[0]
    assert [t["function"]["name"] for t in first["tools"]] == ["calculate"]
    assert "CALL_TOOL" not in first["messages"][0]["content"]  # native: the text protocol is not described
    calls = [e for e in stream if e.kind == "tool_call"]
    assert len(calls) == 1 and calls[0].valid and calls[0].call.arguments == {"expression": "4 * 24"}
    result = stream[-1].answer
    assert result.status == "answered" and result.claims[0].source == "tool:calculate"


def test_openai_backend_falls_back_to_the_text_protocol_when_tools_are_refused(kb):
    with FakeOpenAI(['CALL_TOOL calculate {"expression": "6 * 7"}', lambda body: cite_tool(body, "6 * 7 is 42")], refuse_tools=True) as server:
        settings = calculator_settings(backend="openai", model="fake-model", openai_base_url=server.base_url)
        stream = list(events("What is 6 * 7?", settings, kb=kb))
    assert "tools" in server.requests[0] and "tools" not in server.requests[1]
    assert "CALL_TOOL" in server.requests[1]["messages"][0]["content"]
    assert any(e.kind == "tool_result" and "42" in e.content for e in stream) and stream[-1].answer.status == "answered"


def test_openai_backend_errors_are_one_line(kb):
    with FakeOpenAI(["x"]) as server:
        unknown = load_settings({"backend": "openai", "model": "other-model", "openai_base_url": server.base_url})
        with pytest.raises(BackendError, match="does not know model 'other-model'"):
            answer(QUESTION, unknown, kb=kb)
    down = load_settings({"backend": "openai", "model": "m", "openai_base_url": "http://127.0.0.1:9/v1", "request_retries": 0,
                          "request_timeout": 5})
    with pytest.raises(BackendError, match="cannot reach the OpenAI-compatible endpoint at http://127.0.0.1:9/v1"):
        answer(QUESTION, down, kb=kb)


def test_cli_ask_with_the_openai_backend(tmp_path):
    import subprocess

    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    run = lambda *a: subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), *a], capture_output=True, text=True, cwd=ROOT)  # noqa: E731
    assert run("ingest", str(docs)).returncode == 0
    with FakeOpenAI([f"{GOLD} [1]."]) as server:
        done = run("--set", f"openai_base_url={server.base_url}", "ask", QUESTION, "--backend", "openai", "--model", "fake-model")
    assert done.returncode == 0, done.stderr
    assert GOLD in done.stdout and "supported" in done.stdout
