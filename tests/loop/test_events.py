"""The answer loop as an event stream: order, kinds, agreement with the final answer, cancellation,
threads and asyncio, and `lantern ask --events` read as a real consumer reads it."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from scripted import DOCS, ROOT, ScriptedReasoner, calculator_settings, numbered_from

from lantern.events import EVENT, to_json
from lantern.records import Draft
from lantern.loop import answer, events
from lantern.settings import load_settings


def kinds(stream):
    return [e.kind for e in stream]


def test_events_come_in_stage_order_and_end_with_the_answer(kb):
    reply = lambda ev: f"The model stops looping once the cumulative exit probability reaches the threshold [{numbered_from(ev, 'cumulative')}]."  # noqa: E731
    stream = list(events("When does Ouro stop looping?", load_settings(), kb=kb, reasoner=ScriptedReasoner(reply)))
    assert stream[-1].kind == "answer" and kinds(stream).count("answer") == 1
    stages = [(e.name, e.state) for e in stream if e.kind == "stage"]
    assert stages == [("observe", "started"), ("observe", "finished"), ("remember", "started"), ("remember", "finished"),
                      ("reason", "started"), ("reason", "finished"), ("verify", "started"), ("verify", "finished"),
                      ("converge", "started"), ("converge", "finished")]
    k = kinds(stream)
    assert k.index("evidence") < k.index("token") < k.index("claim") < k.index("answer")
    result = stream[-1].answer
    assert [e.claim for e in stream if e.kind == "claim"] == result.claims and result.status == "answered"
    # Nothing dropped: the answer is the streamed text itself, so no revision is needed.
    assert "".join(e.text for e in stream if e.kind == "token") == result.answer and "revision" not in kinds(stream)
    seconds = [e.seconds for e in stream if e.kind == "token"]
    assert seconds == sorted(seconds) and all(s >= 0 for s in seconds)
    # Every event survives the wire format (the answer line is the --json object).
    for event in stream[:-1]:
        assert EVENT.validate_json(to_json(event)) == event
    assert json.loads(to_json(stream[-1]))["status"] == "answered"


def test_a_dropped_claim_is_announced_and_the_answer_is_what_remains(kb):
    good = "Ouro applies the same transformer layers four times for every token [1]."
    bad = "The exit gate was invented in 1850 by Napoleon [1]."
    stream = list(events("How many times does Ouro apply its layers?", load_settings(), kb=kb,
                         reasoner=ScriptedReasoner(f"{good} {bad}", bad)))
    revision = next(e for e in stream if e.kind == "revision")
    assert [c.claim for c in revision.dropped] == ["The exit gate was invented in 1850 by Napoleon."]
    result = stream[-1].answer
    assert revision.text == result.answer and "Napoleon" not in result.answer and result.status == "partial"
    drafts = {e.draft for e in stream if e.kind == "token"}
    assert drafts == {0, 1}  # the rewrite round streams as a new draft that replaces the first on screen
    assert kinds(stream).index("revision") == len(stream) - 2


def test_thinking_is_kept_apart_from_the_reader_text(kb):
    reply = "<think>The passage about the gate answers it.</think> An exit gate after each loop step gives the probability of stopping there [1]."
    stream = list(events("What does the exit gate give?", load_settings(), kb=kb, reasoner=ScriptedReasoner(reply)))
    thinking = "".join(e.text for e in stream if e.kind == "thinking")
    shown = "".join(e.text for e in stream if e.kind == "token")
    assert thinking.strip() == "The passage about the gate answers it."
    assert "think" not in shown and "passage about" not in shown and shown.startswith("An exit gate")


def test_tool_calls_are_events_with_their_validation(kb):
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expr": "4 * 24"}', 'CALL_TOOL calculate {"expression": "4 * 24"}',
                                lambda ev: f"4 * 24 is 96 [{numbered_from(ev, 'returned')}].")
    stream = list(events("What is 4 * 24?", calculator_settings(), kb=kb, reasoner=reasoner))
    calls = [e for e in stream if e.kind == "tool_call"]
    assert [c.valid for c in calls] == [False, True]
    assert calls[0].error == "invalid arguments for calculate: expr: unknown argument; expected expression"
    results = [e for e in stream if e.kind == "tool_result"]
    assert len(results) == 1 and not results[0].is_error and "96" in results[0].content and results[0].evidence_number
    assert not any("CALL_TOOL" in e.text for e in stream if e.kind == "token")
    assert stream[-1].answer.claims[0].source == "tool:calculate"


def test_a_failed_full_text_search_is_a_visible_notice(kb, monkeypatch):
    from lantern.knowledge.store import Store, TextSearchFailed

    def broken(self, query, limit, where=None):
        raise TextSearchFailed("LanceError: syntax")

    monkeypatch.setattr(Store, "text_search", broken)
    stream = list(events("Where does Lantern keep its knowledge base?", load_settings(), kb=kb,
                         reasoner=ScriptedReasoner("Lantern keeps its knowledge base in LanceDB on local disk [1].")))
    notices = [e.text for e in stream if e.kind == "notice"]
    assert any("full-text search failed" in n and "vector search alone" in n for n in notices)
    assert notices == stream[-1].answer.notices and stream[-1].answer.status == "answered"


def test_cancel_as_the_rewrite_starts_keeps_the_draft_the_reader_saw(kb):
    """Cancelled between the first draft and the rewrite's first token: the reader still sees the
    first draft, so the cancelled answer is that draft's text, not an empty one."""
    first = lambda ev: (f"The model stops looping once the cumulative exit probability reaches the threshold [{numbered_from(ev, 'cumulative')}]. "  # noqa: E731
                        f"The exit gate was invented in 1850 by Napoleon [{numbered_from(ev, 'cumulative')}].")
    cancel = threading.Event()

    class CancelledAtRewrite(ScriptedReasoner):
        def stream(self, question, evidence, feedback=None, tools=None, cancel=None):
            if feedback:  # the converge round: the user presses Escape before its first token
                cancel.set()
                yield Draft(text="", model=self.name, cancelled=True)
                return
            yield from super().stream(question, evidence, feedback, tools, cancel)

    reasoner = CancelledAtRewrite(first)
    stream = list(events("When does Ouro stop looping?", load_settings(), cancel=cancel, kb=kb, reasoner=reasoner))
    result = stream[-1].answer
    assert reasoner.calls and cancel.is_set()  # the rewrite round did start
    assert result.status == "cancelled" and len({e.draft for e in stream if e.kind == "token"}) == 1
    assert result.answer == "".join(e.text for e in stream if e.kind == "token").strip() and "Napoleon" in result.answer


def test_cancel_stops_a_tiny_checkpoint_within_one_token(kb, tiny):
    settings = load_settings({"model": str(tiny), "max_new_tokens": 200, "dtype": "float32", "mode": "fast"})
    cancel = threading.Event()
    stream = []
    for event in events("When does Ouro stop looping?", settings, cancel=cancel, kb=kb):
        stream.append(event)
        if event.kind == "token" and len([e for e in stream if e.kind == "token"]) == 3:
            cancel.set()
    tokens = [e for e in stream if e.kind == "token"]
    result = stream[-1].answer
    assert result.status == "cancelled" and len(tokens) <= 4  # the token in flight may still land
    assert result.answer == "".join(e.text for e in tokens).strip() and "verify" not in result.timings


def test_a_consumer_that_stops_reading_stops_generation(kb, tiny):
    from lantern.backends import ouro

    settings = load_settings({"model": str(tiny), "max_new_tokens": 200, "dtype": "float32"})
    stream = events("When does Ouro stop looping?", settings, kb=kb)
    for event in stream:
        if event.kind == "token":
            break
    stream.close()
    lm = ouro.loaded(str(tiny), "auto", "float32", "none")
    assert lm.lock.acquire(timeout=1)  # generation let go of the model
    lm.lock.release()


def test_concurrent_answers_share_one_loaded_model(kb, tiny):
    from lantern.backends import ouro

    ouro._load.cache_clear()
    settings = load_settings({"model": str(tiny), "max_new_tokens": 8, "dtype": "float32", "converge_rounds": 0})
    results = {}

    def ask(i):
        results[i] = answer("When does Ouro stop looping?", settings, kb=kb)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert ouro._load.cache_info().misses == 1 and len(results) == 3
    assert len({r.answer for r in results.values()}) == 1  # greedy: the same answer, however they interleaved


def test_the_loop_with_mcp_tools_runs_inside_a_running_event_loop(kb):
    """MCP tools used to call anyio.run, which fails in a thread whose event loop is running."""
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expression": "6 * 7"}', lambda ev: f"6 * 7 is 42 [{numbered_from(ev, 'returned')}].")

    async def main():
        return answer("What is 6 * 7?", calculator_settings(), kb=kb, reasoner=reasoner)

    result = asyncio.run(main())
    assert result.status == "answered" and result.claims[0].source == "tool:calculate"


def lantern(home, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "lantern", "--home", str(home), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, **kwargs)


def read_events(process):
    """Lines as a consumer reads them: (seconds since start, event) as each arrives."""
    started, out = time.time(), []
    for line in process.stdout:
        out.append((time.time() - started, json.loads(line)))
    process.wait(timeout=60)
    return out, time.time() - started


@pytest.fixture
def ingested_home(tmp_path):
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(docs)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return home


@pytest.mark.parametrize("with_model", [False, True], ids=["extractive", "tiny-checkpoint"])
def test_ask_events_streams_ndjson_before_the_process_ends(ingested_home, tiny, with_model):
    args = ["--set", f"model={tiny}", "--set", "dtype=float32", "--set", "max_new_tokens=24"] if with_model else []
    process = lantern(ingested_home, *args, "ask", "When does Ouro stop looping?", "--events")
    received, total = read_events(process)
    assert process.returncode == 0, process.stderr.read()
    names = [e["kind"] for _, e in received]
    assert names[0] == "stage" and names[-1] == "answer" and {"evidence", "claim", "token"} <= set(names)
    assert received[0][0] < received[-1][0]  # the first event was read while the answer was still being made
    final = received[-1][1]
    assert final["model"] == (str(tiny) if with_model else "extractive") and {"claims", "dropped", "status", "timings"} <= set(final)
    if with_model:
        assert all(1 <= e["exit_step"] <= 4 for _, e in received if e["kind"] == "token")


def test_ctrl_c_cancels_ask_and_leaves_the_session_untouched(ingested_home, tiny):
    sessions = ingested_home / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "s.jsonl").write_text('{"role": "user", "text": "Earlier question?"}\n{"role": "assistant", "text": "Earlier answer."}\n')
    before = (sessions / "s.jsonl").read_bytes()
    process = lantern(ingested_home, "--set", f"model={tiny}", "--set", "dtype=float32", "--set", "max_new_tokens=400",
                      "--set", "mode=fast", "ask", "When does Ouro stop looping?", "--events", "--session", "s")
    received, tokens_after = [], None
    for line in process.stdout:
        received.append(json.loads(line))
        if tokens_after is not None and received[-1]["kind"] == "token":
            tokens_after += 1
        if tokens_after is None and sum(e["kind"] == "token" for e in received) == 2:
            os.kill(process.pid, signal.SIGINT)
            tokens_after = 0
    process.wait(timeout=60)
    assert process.returncode == 130
    assert received[-1]["kind"] == "answer" and received[-1]["status"] == "cancelled"
    assert tokens_after <= 2  # the token in flight, and one already in the pipe
    assert (sessions / "s.jsonl").read_bytes() == before


def test_ask_json_and_events_together_is_a_one_line_error(ingested_home):
    done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(ingested_home), "ask", "x?", "--json", "--events"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1
