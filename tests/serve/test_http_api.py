"""`lantern serve` against real clients from PyPI (`ollama`, `openai`) on a tiny random checkpoint,
as a separate process: raw and grounded endpoints, streaming and not, errors in each API's shape,
and 50 concurrent requests that each get what they would get alone."""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"lamps.md": "# Lamps\n\nA lantern is a portable light source. The Ouro model loops its layers four times per token.\n"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: Path, checkpoint: Path, *flags: str, env=None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lantern", "--home", str(home), "--set", "dtype=float32", *flags, "serve",
                                "--model", str(checkpoint), "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode())
            time.sleep(0.1)
    process.kill()
    raise AssertionError("lantern serve did not start")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from lantern.runtime.testing import make_random_checkpoint

    base = tmp_path_factory.mktemp("serve")
    checkpoint = make_random_checkpoint(base / "tiny-ouro", "tiny", seed=1, gate_bias=1.0)
    docs = base / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    home = base / "home"
    assert subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(docs)], cwd=ROOT,
                          capture_output=True).returncode == 0
    process, url = start(home, checkpoint, "--set", "log_level=INFO")
    yield url, "tiny-ouro", home
    process.terminate()
    process.wait(timeout=10)


def test_ollama_client_generate_and_chat(server):
    import ollama

    url, model, _ = server
    client = ollama.Client(host=url)
    assert {m.model for m in client.list().models} == {model, "lantern"}
    whole = client.generate(model=model, prompt="Hello", options={"num_predict": 6, "temperature": 0})
    assert whole.done and whole.eval_count <= 6 and whole.done_reason in ("length", "stop")
    pieces = list(client.generate(model=model, prompt="Hello", stream=True, options={"num_predict": 6, "temperature": 0}))
    assert pieces[-1].done and "".join(p.response for p in pieces) == whole.response  # greedy: same text streamed or not
    chat = client.chat(model=model, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 5, "temperature": 0})
    assert chat.message.role == "assistant" and chat.done
    shown = client.show(model)
    assert shown.modelinfo["ouro.loop_steps"] == 4


def test_exit_steps_and_mode_in_the_extension_field(server):
    url, model, _ = server
    lines = [json.loads(line) for line in httpx.post(f"{url}/api/generate", json={
        "model": model, "prompt": "Hello", "options": {"num_predict": 8, "temperature": 0}, "lantern": {"mode": "fast"}}).text.splitlines()]
    assert all(line["lantern"]["exit_step"] == 4 for line in lines[:-1])  # FAST: every token runs all 4 loop steps
    assert lines[-1]["lantern"]["mode"] == "fast" and lines[-1]["lantern"]["avg_exit_steps"] == 4.0
    deep = httpx.post(f"{url}/api/generate", json={"model": model, "prompt": "Hello", "stream": False,
                                                    "options": {"num_predict": 8, "temperature": 0}}).json()
    assert deep["lantern"]["mode"] == "deep" and deep["lantern"]["avg_exit_steps"] < 4.0  # gate bias 1: exits early


def test_openai_client_chat_and_completions(server):
    from openai import OpenAI

    url, model, _ = server
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    assert {m.id for m in client.models.list()} == {model, "lantern"}
    whole = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=6, temperature=0)
    assert whole.choices[0].message.content is not None and whole.usage.completion_tokens <= 6
    assert whole.model_extra["lantern"]["mode"] == "deep"
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=6, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert any((c.model_extra or {}).get("lantern", {}).get("exit_step") for c in chunks)
    fast = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=4, temperature=0,
                                          extra_body={"lantern": {"mode": "fast"}})
    assert fast.model_extra["lantern"]["avg_exit_steps"] == 4.0
    completion = client.completions.create(model=model, prompt="Once upon a time", max_tokens=5, temperature=0)
    assert completion.choices[0].text is not None and completion.usage.completion_tokens <= 5


def test_stop_strings_end_the_text_before_them(server):
    url, model, _ = server
    alone = httpx.post(f"{url}/api/generate", json={"model": model, "prompt": "Hello", "stream": False,
                                                     "options": {"num_predict": 12, "temperature": 0}}).json()["response"]
    assert len(alone) > 4
    stop = alone[3:5]
    cut = httpx.post(f"{url}/api/generate", json={"model": model, "prompt": "Hello", "stream": False,
                                                   "options": {"num_predict": 12, "temperature": 0, "stop": [stop]}}).json()
    assert cut["done_reason"] == "stop" and stop not in cut["response"] and alone.startswith(cut["response"])


def test_grounded_model_answers_with_verified_claims(server):
    from openai import OpenAI

    import ollama

    url, _, _ = server
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    reply = client.chat.completions.create(model="lantern", messages=[{"role": "user", "content": "How many times does Ouro loop per token?"}])
    extension = reply.model_extra["lantern"]
    kept, dropped = extension["claims"], extension["dropped"]
    assert extension["status"] == ("answered" if kept and not dropped else "partial" if kept else "not_in_kb")
    content = reply.choices[0].message.content
    assert content and all(c["claim"] in content for c in kept)  # the reply is the verified answer
    assert not any(c["claim"] in content for c in dropped)
    assert extension["sources"] == sorted({c["source"] for c in kept})
    for claim in extension["claims"] + extension["dropped"]:
        assert {"claim", "evidence", "confidence", "verdict", "source", "start_line", "end_line"} <= set(claim)
    stream = list(client.chat.completions.create(model="lantern", stream=True,
                                                 messages=[{"role": "user", "content": "How many times does Ouro loop per token?"}]))
    stages = [(c.model_extra or {}).get("lantern", {}).get("stage") for c in stream]
    assert "remember" in stages and stream[-1].model_extra["lantern"]["status"] == extension["status"]
    chat = ollama.Client(host=url).chat(model="lantern", messages=[{"role": "user", "content": "What is a lantern?"}])
    assert chat.done and chat.message.content


def test_errors_come_in_each_apis_own_shape(server):
    url, model, _ = server
    malformed = httpx.post(f"{url}/api/generate", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"].startswith("malformed JSON")
    unknown_field = httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": [], "max_token": 5})
    assert unknown_field.status_code == 400 and unknown_field.json()["error"]["message"] == "max_token: unknown field"
    unknown_model = httpx.post(f"{url}/api/generate", json={"model": "llama9", "prompt": "x"})
    assert unknown_model.status_code == 404 and "llama9" in unknown_model.json()["error"]
    openai_missing = httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    assert openai_missing.status_code == 404 and openai_missing.json()["error"]["param"] == "model"
    too_big = httpx.post(f"{url}/api/generate", json={"model": model, "prompt": "x" * (1100 * 1024)})
    assert too_big.status_code == 413
    bad_value = httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 0})
    assert bad_value.status_code == 400 and bad_value.json()["error"]["param"] == "max_tokens"


def test_fifty_concurrent_requests_each_get_what_they_would_alone(server):
    url, model, _ = server
    prompts = [f"Request number {i}: tell me about lamps" for i in range(50)]

    def ask(prompt: str) -> str:
        reply = httpx.post(f"{url}/api/generate", timeout=300, json={
            "model": model, "prompt": prompt, "stream": False, "options": {"num_predict": 10, "temperature": 0}})
        assert reply.status_code == 200, reply.text
        return reply.json()["response"]

    alone = [ask(p) for p in prompts]  # one at a time: the reference
    with ThreadPoolExecutor(max_workers=50) as pool:
        together = list(pool.map(ask, prompts))
    assert len(set(alone)) > 10  # the prompts really lead to different texts, so a mix-up would show
    assert together == alone


def test_a_client_that_goes_away_cancels_its_generation(server):
    url, model, home = server
    with httpx.stream("POST", f"{url}/api/generate", json={"model": model, "prompt": "Hello",
                                                           "options": {"num_predict": 100000, "temperature": 0}}) as reply:
        for n, _ in enumerate(reply.iter_lines()):
            if n == 3:
                break
    log = home / "logs" / "lantern.log"
    for _ in range(100):
        if log.exists() and "request cancelled after" in log.read_text():
            break
        time.sleep(0.1)
    assert "request cancelled after" in log.read_text()
    quick = httpx.post(f"{url}/api/generate", timeout=60, json={"model": model, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}})
    assert quick.status_code == 200


def test_bearer_token_and_a_model_that_cannot_load(tmp_path, server):
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ck", "tiny", seed=2)
    process, url = start(tmp_path / "home", checkpoint, env=os.environ | {"LANTERN_SERVE_TOKEN": "s3cret"})
    try:
        assert httpx.get(f"{url}/api/tags").status_code == 401
        assert httpx.get(f"{url}/api/tags", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        refused = httpx.post(f"{url}/v1/chat/completions", json={"model": "ck", "messages": []})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    finally:
        process.terminate()
        process.wait(timeout=10)
    broken = subprocess.run([sys.executable, "-m", "lantern", "--home", str(tmp_path / "h2"), "serve", "--model", str(tmp_path / "nothing")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert broken.returncode == 1 and broken.stderr.startswith("error: no checkpoint at") and broken.stderr.count("\n") == 1
