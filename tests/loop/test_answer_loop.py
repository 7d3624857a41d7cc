"""The answer loop with a scripted fake model, a real knowledge base, real verifier and a real MCP tool."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripted import ROOT, ScriptedReasoner, calculator_settings, numbered, numbered_from

from lantern.loop import answer
from lantern.prompts import load_prompts
from lantern.records import Turn
from lantern.settings import load_settings


def assert_citations_valid(result):
    shown = {(e.source, e.start_line, e.end_line, e.text) for e in result.evidence}
    for claim in result.claims + result.dropped:
        assert all(1 <= n <= len(result.evidence) for n in claim.citations)
        if claim.source.startswith("tool:"):
            continue
        if not claim.source:  # never checked (it cites nothing that exists): no quote either
            assert not claim.evidence and claim.reason
            continue
        lines = Path(claim.source).read_text().split("\n")
        assert claim.evidence in "\n".join(lines[claim.start_line - 1 : claim.end_line])
        assert any(source == claim.source and text.find(claim.evidence) >= 0 for source, _, _, text in shown)


def test_cited_supported_answer(kb):
    settings = load_settings()
    probe = answer("When does Ouro stop looping?", settings, kb=kb, reasoner=ScriptedReasoner("placeholder", "placeholder"))
    n = numbered(probe, "cumulative exit probability")
    reply = f"The model stops looping once the cumulative exit probability reaches the threshold [{n}]."
    result = answer("When does Ouro stop looping?", settings, kb=kb, reasoner=ScriptedReasoner(reply))
    assert result.status == "answered" and len(result.claims) == 1
    claim = result.claims[0]
    assert claim.verdict == "supported" and claim.confidence >= settings.min_support and claim.citations == [n]
    assert claim.evidence == "The model stops looping once the cumulative exit probability reaches the threshold."
    assert claim.source.endswith("ouro.md") and claim.start_line == claim.end_line == 8
    assert set(result.timings) >= {"observe", "remember", "reason", "verify", "converge", "total"}
    assert_citations_valid(result)


def test_a_claim_citing_only_passages_that_do_not_exist_is_dropped_with_the_reason(kb):
    reply = "Ouro applies the same transformer layers four times for every token [9]. Lantern keeps its knowledge base in LanceDB on local disk.[^7]"
    result = answer("How does Ouro work and where is the KB stored?", load_settings(), kb=kb, reasoner=ScriptedReasoner(reply, reply))
    assert not result.claims and len(result.dropped) == 2 and result.status == "not_in_kb"
    n = len(result.evidence)
    first, second = result.dropped
    # Not re-targeted at the passages that would support it: unchecked, no quote, the reason says why.
    assert first.citations == [] and first.evidence == "" and first.confidence == 0.0 and first.verdict == "unsupported"
    assert first.reason == f"cites [9], but only passages [1]-[{n}] exist"
    assert second.reason == f"cites [7], but only passages [1]-[{n}] exist"
    assert_citations_valid(result)


def test_an_uncited_claim_is_checked_against_every_passage(kb):
    reply = "Lantern keeps its knowledge base in LanceDB on local disk."
    result = answer("Where is the KB stored?", load_settings(), kb=kb, reasoner=ScriptedReasoner(reply))
    assert result.claims and result.claims[0].citations == [] and result.claims[0].source.endswith("storage.md")


def test_hallucinated_claim_is_retried_with_feedback_then_dropped(kb):
    bad = "The exit gate was invented in 1850 by Napoleon [1]."
    reasoner = ScriptedReasoner(f"Ouro applies the same transformer layers four times for every token [1]. {bad}", bad)
    result = answer("How many times does Ouro apply its layers?", load_settings(), kb=kb, reasoner=reasoner)
    assert result.status == "partial"
    assert [c.claim for c in result.dropped] == ["The exit gate was invented in 1850 by Napoleon."]
    assert reasoner.calls[1]["feedback"] and "Napoleon" in reasoner.calls[1]["feedback"][0]
    assert_citations_valid(result)


def test_a_copied_sentence_with_its_negation_flipped_is_contradicted_and_dropped(kb):
    probe = answer("When does Ouro stop looping?", load_settings(), kb=kb, reasoner=ScriptedReasoner("placeholder", "placeholder"))
    n = numbered(probe, "cumulative exit probability")
    flipped = f"The model does not stop looping once the cumulative exit probability reaches the threshold [{n}]."
    reasoner = ScriptedReasoner(flipped, flipped)
    result = answer("When does Ouro stop looping?", load_settings(), kb=kb, reasoner=reasoner)
    assert result.status == "not_in_kb" and result.answer == load_prompts("answer")["nothing_verified"]
    dropped = result.dropped[0]
    assert dropped.verdict == "contradicted" and dropped.confidence == 0.0 and not result.claims
    assert dropped.evidence == "The model stops looping once the cumulative exit probability reaches the threshold."
    assert reasoner.calls[1]["feedback"]
    assert_citations_valid(result)


def test_refusal_gives_not_in_kb(kb):
    result = answer("How does Ouro stop?", load_settings(), kb=kb, reasoner=ScriptedReasoner("I cannot answer from the passages."))
    assert result.status == "not_in_kb" and not result.claims


def test_no_relevant_evidence_never_calls_the_model(kb):
    reasoner = ScriptedReasoner()
    result = answer("What is the boiling point of tungsten in kelvin?", load_settings(), kb=kb, reasoner=reasoner)
    assert result.status == "not_in_kb" and reasoner.calls == [] and "reason" not in result.timings


def test_tool_request_runs_a_real_mcp_tool_and_its_result_becomes_evidence(kb):
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expression": "4 * 24"}',
                                lambda evidence: f"4 * 24 is 96 [{numbered_from(evidence, 'returned')}].")
    result = answer("Ouro loops four times over 24 layers; how many layer applications per token?", calculator_settings(), kb=kb, reasoner=reasoner)
    assert reasoner.calls[0]["tools"][0]["name"] == "calculate"
    tool_evidence = [e for e in result.evidence if e.source == "tool:calculate"]
    assert tool_evidence and "96" in tool_evidence[0].text
    assert "act" in result.timings
    assert [c.source for c in result.claims] == ["tool:calculate"] and result.status == "answered"


def test_invalid_tool_call_is_reported_to_the_model_never_run_and_never_a_claim(kb):
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expr": 5}', "I cannot answer from the passages.")
    result = answer("How many layer applications does Ouro make?", calculator_settings(), kb=kb, reasoner=reasoner)
    feedback = reasoner.calls[1]["feedback"][0]
    assert "invalid arguments" in feedback and "expression" in feedback
    assert result.status == "not_in_kb" and not result.claims and not result.dropped
    assert not [e for e in result.evidence if e.source.startswith("tool:")]


def test_malformed_tool_line_is_fed_back_for_one_repair_and_not_verified(kb):
    reasoner = ScriptedReasoner("Let me compute. CALL_TOOL calculate {expression: 4 times 24",
                                'CALL_TOOL calculate {"expression": "4 * 24"}',
                                lambda evidence: f"4 times 24 is 96 [{numbered_from(evidence, 'returned')}].")
    result = answer("What is four times 24?", calculator_settings(), kb=kb, reasoner=reasoner)
    assert "could not be read" in reasoner.calls[1]["feedback"][0] and "not a JSON object" in reasoner.calls[1]["feedback"][0]
    assert all("CALL_TOOL" not in c.claim for c in result.claims + result.dropped)
    assert [c.claim for c in result.claims] == ["4 times 24 is 96."]


def test_a_question_only_a_tool_can_answer_reaches_the_tool_without_evidence(kb):
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expression": "2340 * 17.5 / 100"}',
                                lambda evidence: f"2340 * 17.5 / 100 is 409.5 [{numbered_from(evidence, 'returned')}].")
    result = answer("What is 17.5% of 2,340?", calculator_settings(), kb=kb, reasoner=reasoner)
    assert reasoner.calls[0]["evidence"] == []  # nothing in the knowledge base, yet the model was asked
    assert result.status == "answered" and result.claims[0].source == "tool:calculate"
    without_tools = answer("What is 17.5% of 2,340?", load_settings(), kb=kb, reasoner=ScriptedReasoner())
    assert without_tools.status == "not_in_kb"


def test_follow_up_question_uses_the_earlier_turn(kb):
    history = [Turn(role="user", text="Where does Lantern keep its knowledge base?"), Turn(role="assistant", text="In LanceDB.")]
    reasoner = ScriptedReasoner("Lantern keeps its knowledge base in LanceDB on local disk [1].")
    result = answer("and on which disk?", load_settings(), kb=kb, reasoner=reasoner, history=history)
    assert "LanceDB" in result.evidence[0].text and result.status == "answered"


def test_lantern_ask_json_answers_offline_from_the_shipped_kb(tmp_path):
    env_home = tmp_path / "home"
    run = lambda *args: subprocess.run([sys.executable, "-m", "lantern", "--home", str(env_home), *args], capture_output=True, text=True, cwd=ROOT)  # noqa: E731
    assert run("ingest", "kb/").returncode == 0
    done = run("ask", "How does Ouro decide when to stop looping?", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] in ("answered", "partial") and data["model"] == "extractive"
    assert "not installed" in done.stderr and "lantern model pull" in done.stderr
    for claim in data["claims"]:
        lines = (ROOT / claim["source"]).read_text().split("\n") if not Path(claim["source"]).is_absolute() else Path(claim["source"]).read_text().split("\n")
        assert claim["evidence"] in "\n".join(lines[claim["start_line"] - 1 : claim["end_line"]])
        assert 0 <= claim["confidence"] <= 1 and claim["verdict"] == "supported"


def test_end_to_end_with_a_tiny_random_checkpoint(kb, tmp_path):
    """The real LoopLM path: load the checkpoint, prompt from templates, generate in DEEP mode, verify."""
    from lantern.runtime.testing import make_random_checkpoint

    checkpoint = make_random_checkpoint(tmp_path / "ouro-tiny", "tiny", seed=1, gate_bias=1.0)
    # One draft (no rewrite round), so every claim event is of the answer's own draft.
    settings = load_settings({"model": str(checkpoint), "max_new_tokens": 24, "dtype": "float32", "converge_rounds": 0})
    from lantern.loop import events

    stream = list(events("When does Ouro stop looping?", settings, kb=kb))
    result = stream[-1].answer
    assert result.model == str(checkpoint) and result.notices == [] and result.backend == "ouro"
    tokens = [e for e in stream if e.kind == "token"]
    assert tokens and all(1 <= e.exit_step <= 4 for e in tokens)
    assert result.avg_exit_steps == pytest.approx(sum(e.exit_step for e in tokens) / len(tokens))
    claims = [e.claim for e in stream if e.kind == "claim"]
    kept = [c for c in claims if c.verdict == "supported"]
    assert result.claims == kept and len(result.dropped) == len(claims) - len(kept)
    assert result.status == ("answered" if kept and not result.dropped else "partial" if kept else "not_in_kb")
    assert {"remember", "reason", "verify", "total"} <= set(result.timings)
    assert_citations_valid(result)


def test_a_named_model_that_is_missing_is_an_error_not_a_silent_fallback(kb, tmp_path):
    from lantern.errors import ModelNotFound

    settings = load_settings({"model": str(tmp_path / "no-model-here")})
    with pytest.raises(ModelNotFound, match="no checkpoint"):
        answer("When does Ouro stop looping?", settings, kb=kb, require_model=True)
    fallback = answer("When does Ouro stop looping?", load_settings(), kb=kb)
    assert fallback.model == "extractive" and "lantern model pull" in fallback.notices[0]


def test_loaded_looplm_also_judges_claims(tmp_path):
    from lantern.runtime import load
    from lantern.runtime.testing import make_random_checkpoint
    from lantern.verify.judge import LoopLMJudge

    lm = load(make_random_checkpoint(tmp_path / "ouro-tiny", "tiny", seed=2), dtype="float32")
    judge = LoopLMJudge(lm, "Passage: {evidence}\nClaim: {claim}\nSupported? yes or no.")
    p = judge("Ouro loops four times.", "Ouro applies its layers four times per token.")
    assert 0.0 < p < 1.0 and judge.yes and judge.no and not set(judge.yes) & set(judge.no)


def test_the_extractive_reasoner_reads_a_sentence_with_its_section_heading():
    """Two sentences equally like the question; the one under a heading that names the question's
    words ("decides", "stop") is the answer."""
    import numpy as np

    from lantern.loop.reason import ExtractiveReasoner
    from lantern.records import Evidence, Question

    def passage(number, heading, text):
        return Evidence(chunk_id=f"c{number}", source="doc.md", text=text, start_line=number * 10, end_line=number * 10,
                        heading=heading, score=1.0)

    evidence = [passage(1, "Guide > Colours of the interface", "It uses a single gate with a threshold of one half."),
                passage(2, "Guide > How the model decides when to stop", "It uses a single gate with a threshold of one third.")]
    flat = lambda texts: np.ones((len(texts), 4)) / 2.0  # noqa: E731  (every text equally similar in meaning)
    from lantern.loop.reason import draft_of

    draft = draft_of(ExtractiveReasoner(flat, max_sentences=1), Question(text="How does it decide when to stop?"), evidence)
    assert draft.text.endswith("one third. [2]")


def test_a_named_model_that_is_missing_is_an_error_even_without_evidence(kb, tmp_path):
    from lantern.errors import ModelNotFound

    settings = load_settings({"model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelNotFound, match="no checkpoint at"):
        answer("zzzz qqqq", settings, kb=kb, require_model=True)


def test_tools_are_described_to_the_model_as_compact_signatures():
    from lantern.loop.reason import build_messages, signature
    from lantern.records import Question

    schema = {"type": "object", "required": ["value", "to_unit"],
              "properties": {"value": {"type": "number"}, "to_unit": {"type": "string"}, "scheme": {"enum": ["css", "x11"]},
                             "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    assert signature("units__convert", schema) == 'units__convert(value: number, to_unit: string, scheme?: "css"|"x11", note?: string)'
    tools = [{"name": "units__convert", "description": "Convert\n  units.", "input_schema": schema}]
    system = build_messages(load_prompts("answer"), Question(text="q"), [], tools=tools)[0]["content"]
    assert '- units__convert(value: number, to_unit: string, scheme?: "css"|"x11", note?: string): Convert units.' in system
    assert "properties" not in system  # not the JSON Schema itself
