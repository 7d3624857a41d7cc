"""The answer loop, wired: Observe -> Remember -> Reason -> Act -> Verify -> Converge.

`answer(question, settings)` is the whole of `lantern ask`; every stage's seconds land in
`Answer.timings`. No evidence above the relevance floor means "not in the knowledge base" without
calling the model; a tool request runs through Act and its result joins the evidence; unsupported
claims get `converge_rounds` rewrites with the verifier's feedback, then are dropped.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable

from lantern.embedding import memoized
from lantern.loop import converge as cv
from lantern.loop.act import MCPToolRunner, ToolRunner, as_evidence
from lantern.loop.observe import observe
from lantern.loop.reason import Reasoner, choose_reasoner
from lantern.loop.remember import remember
from lantern.loop.verify import verify
from lantern.prompts import load_prompts
from lantern.records import Answer, Turn
from lantern.settings import Settings

MAX_TOOL_ROUNDS = 2


def answer(
    question_text: str,
    settings: Settings,
    *,
    history: list[Turn] | None = None,
    session_id: str | None = None,
    kb=None,
    reasoner: Reasoner | None = None,
    verifier=None,
    tools: ToolRunner | None = None,
    on_token: Callable[[str], None] | None = None,
    require_model: bool = False,
) -> Answer:
    prompts = load_prompts("answer", settings.prompts_dir)
    timings: dict[str, float] = {}

    @contextmanager
    def stage(name: str):
        started = time.perf_counter()
        yield
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - started, 4)

    began = time.perf_counter()
    with stage("observe"):
        question = observe(question_text, history, session_id)
    if require_model:  # a model the user named must exist, whether or not this question needs it
        from lantern.runtime.locate import require

        require(settings.model)
    with stage("remember"):
        if kb is None:
            from lantern.knowledge import KnowledgeBase

            kb = KnowledgeBase.open(settings)
        recall = remember(question, kb, settings.top_k, settings.min_relevance)
    result = Answer(question=question.text, answer=prompts["not_in_kb"], status="not_in_kb", mode=settings.mode, evidence=recall.evidence)
    if not recall.evidence:
        timings["total"] = round(time.perf_counter() - began, 4)
        return result.model_copy(update={"timings": timings})
    embed = memoized(kb.embedder)  # one cache: the reasoner's sentence vectors serve the verifier too

    with stage("reason"):
        if reasoner is None:
            reasoner, notice = choose_reasoner(settings, embed, require_model)
            if notice:
                result.notices.append(notice)
        if tools is None and settings.mcp_servers:
            tools = MCPToolRunner(settings.mcp_servers)
        tool_list = tools.list_tools() if tools is not None else None
        evidence = list(recall.evidence)
        draft = reasoner.draft(question, evidence, tools=tool_list, on_token=on_token)

    rounds = 0
    while draft.tool_calls and rounds < MAX_TOOL_ROUNDS:
        rounds += 1
        with stage("act"):
            notes = []
            for call in draft.tool_calls:
                outcome = tools.call(call) if tools is not None else None
                if outcome is None:
                    notes.append(f"tool {call.name} is not available: no MCP servers are configured")
                elif outcome.is_error:
                    notes.append(f"tool {call.name} failed: {outcome.content}")
                else:
                    evidence.append(as_evidence(outcome, len(evidence) + 1))
        with stage("reason"):
            draft = reasoner.draft(question, evidence, feedback=notes or None, tools=tool_list, on_token=on_token)

    with stage("verify"):
        if verifier is None:
            from lantern.verify.support import Verifier

            judge = None
            if settings.verifier_model:
                from lantern.verify.judge import CrossEncoderJudge

                judge = CrossEncoderJudge(settings.verifier_model)
            elif settings.model_judge and hasattr(reasoner, "lm"):
                from lantern.verify.judge import LoopLMJudge

                judge = LoopLMJudge(reasoner.lm, prompts["judge"], settings.exit_threshold)
            verifier = Verifier.from_settings(settings, judge=judge, embed=embed)
        claims = verify(draft, evidence, verifier, prompts["refusal_markers"])
    steps = [draft.avg_exit_steps] if draft.avg_exit_steps else []

    for _ in range(settings.converge_rounds):
        kept, dropped = cv.partition(claims)
        if not dropped or reasoner.name == "extractive":
            break
        with stage("converge"):
            retry = reasoner.draft(question, evidence, feedback=cv.feedback(dropped), tools=None, on_token=None)
            if retry.avg_exit_steps:
                steps.append(retry.avg_exit_steps)
        with stage("verify"):
            claims = cv.better(claims, verify(retry, evidence, verifier, prompts["refusal_markers"]))

    with stage("converge"):
        kept, dropped = cv.partition(claims)
        status = cv.status_of(kept, dropped)
        # Evidence was found but every drafted sentence failed: say so, not that the KB has nothing.
        text = cv.render(kept) if kept else prompts["nothing_verified" if dropped else "not_in_kb"]
    timings["total"] = round(time.perf_counter() - began, 4)
    return result.model_copy(
        update={"answer": text, "status": status, "claims": kept, "dropped": dropped, "model": draft.model,
                "timings": timings, "avg_exit_steps": sum(steps) / len(steps) if steps else None, "evidence": evidence}
    )
