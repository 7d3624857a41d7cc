"""The answer loop, wired: Observe -> Remember -> Reason -> Act -> Verify -> Converge, as a stream of events.

`events(question, settings, history, cancel)` yields the typed events of `lantern.events` while
the answer is made: each stage as it starts and finishes, the evidence, every token meant for the
reader (with its exit step), thinking apart, each tool call as parsed and checked and its result,
each claim as soon as it is verified, notices, and last the Answer. `answer()` is the consumer
that returns that Answer.

The rules it keeps: no evidence and no tools means "not in the knowledge base" without calling
the model; with tools configured the model may answer from a tool alone. A tool request never
becomes a claim; an unparseable or invalid call never runs and its error goes back to the model
(one repair round); a successful result joins the evidence. Unsupported claims get
`converge_rounds` rewrites with the verifier's feedback (when the reasoner can rewrite), then are
dropped. `cancel` (a threading.Event) is checked after every token and between stages: the
stream then ends with an answer of status `cancelled` holding the partial text.

The generator runs in whichever thread iterates it, so a UI worker thread, an asyncio server's
worker thread or the main thread all work; a consumer that stops iterating stops generation.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterator

from lantern.embedding import memoized
from lantern.events import (AnswerEvent, ClaimEvent, EvidenceEvent, NoticeEvent, RevisionEvent, StageEvent, ThinkingEvent,
                            TokenEvent, ToolCallEvent, ToolResultEvent)
from lantern.loop import converge as cv
from lantern.loop.act import ToolRunner, as_evidence, refusal
from lantern.loop.observe import observe
from lantern.loop.reason import Reasoner, choose_reasoner
from lantern.loop.remember import remember
from lantern.loop.verify import check_claims
from lantern.prompts import load_prompts
from lantern.records import Answer, Claim, Draft, Evidence, Question, Turn
from lantern.settings import Settings
from lantern.toolcalls.registry import configured_servers
from lantern.verify import relevance as rel
from lantern.verify.answerable import shared_model as answerability_model
from lantern.verify.answerable import titled, window
from lantern.verify.support import sentence_idf

log = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 2
"""Tool rounds per answer: a call, then one more (a repair of a rejected call, or a follow-up call)."""
ANSWERABLE_CLAIMS = 2
"""How many of the best answering claims' passages the answerability check reads (the answer stands if one answers)."""


def answer(question_text: str, settings: Settings, *, history: list[Turn] | None = None, on_token=None, **options) -> Answer:
    """The final Answer (the last event's); `on_token(text)` sees each token meant for the reader."""
    for event in events(question_text, settings, history, **options):
        if on_token is not None and event.kind == "token":
            on_token(event.text)
    return event.answer


def events(question: str, settings: Settings, history: list[Turn] | None = None, cancel: threading.Event | None = None, *,
           session_id: str | None = None, kb=None, reasoner: Reasoner | None = None, verifier=None,
           tools: ToolRunner | None = None, require_model: bool = False) -> Iterator:
    """The events of answering `question` (see lantern.events for their order); the last is the answer."""
    return _Run(settings, cancel, kb, reasoner, verifier, tools, require_model).events(question, history, session_id)


def require_model(settings: Settings) -> None:
    """Raise ModelNotFound when the configured model is not where its backend looks (an endpoint is asked later)."""
    if settings.backend == "ouro":
        from lantern.runtime.locate import require

        require(settings.model)
    elif settings.backend == "hf":
        from lantern.backends.hf import resolve

        resolve(settings.model)


class _Run:
    """One answer in the making: its clock, stage timings, evidence and drafts."""

    def __init__(self, settings: Settings, cancel, kb, reasoner, verifier, tools, require_model: bool) -> None:
        self.settings = settings
        self.cancel = cancel or threading.Event()
        self.kb, self.reasoner, self.verifier, self.tools = kb, reasoner, verifier, tools
        self.require_model = require_model
        self.prompts = load_prompts("answer", settings.prompts_dir)
        self.began = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self.notices: list[str] = []
        self.evidence: list[Evidence] = []
        self.draft_number = -1
        self.shown = ""  # the text of the latest draft, as its tokens were streamed
        self.steps: list[float] = []
        self.tokens = 0
        self.asked: rel.Asked | None = None
        self._weight = None  # word rarity over the evidence, for relevance; made when the evidence is final
        self.embed = None  # the answer's memoized sentence embedder (reasoner, verifier and relevance share it)

    # --- small helpers -------------------------------------------------------------------------
    def start(self, name: str) -> StageEvent:
        self._started[name] = time.perf_counter()
        return StageEvent(name=name, state="started")

    def finish(self, name: str) -> StageEvent:
        seconds = time.perf_counter() - self._started.pop(name)
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 4)
        return StageEvent(name=name, state="finished", seconds=round(seconds, 4))

    def notice(self, text: str) -> NoticeEvent:
        self.notices.append(text)
        return NoticeEvent(text=text)

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def final(self, question: Question, **fields) -> AnswerEvent:
        self.timings["total"] = round(time.perf_counter() - self.began, 4)
        steps = {"avg_exit_steps": sum(self.steps) / len(self.steps)} if self.steps else {}
        record = Answer(question=question.text, mode=self.settings.mode, evidence=self.evidence, notices=self.notices,
                        timings=self.timings, **steps, **fields)
        return AnswerEvent(answer=record)

    def stopped(self, question: Question, claims: list[Claim] | None = None) -> AnswerEvent:
        """The answer when the caller cancelled: what the reader saw so far, marked cancelled."""
        for name in list(self._started):
            self.finish(name)
        log.info("answer cancelled after %d tokens (%.2f s): %r", self.tokens, time.perf_counter() - self.began, question.text[:80])
        kept, dropped = cv.partition(claims or [])
        return self.final(question, answer=self.shown.strip(), status="cancelled", claims=kept, dropped=dropped,
                          model=getattr(self.reasoner, "name", ""), backend=getattr(self.reasoner, "backend", ""))

    def draft(self, question: Question, feedback: list[str] | None, tools) -> Iterator:
        """Stream one draft from the reasoner as token/thinking events; returns the Draft."""
        self.draft_number += 1
        first_token = True
        draft: Draft | None = None
        for item in self.reasoner.stream(question, self.evidence, feedback=feedback, tools=tools, cancel=self.cancel):
            if isinstance(item, Draft):
                draft = item
            elif item.channel == "thinking":
                yield ThinkingEvent(text=item.text, seconds=round(time.perf_counter() - self.began, 4), draft=self.draft_number)
            else:
                if first_token:  # a reader keeps seeing the previous draft until this one writes its first token
                    self.shown, first_token = "", False
                self.shown += item.text
                self.tokens += 1
                yield TokenEvent(text=item.text, exit_step=item.exit_step, seconds=round(time.perf_counter() - self.began, 4),
                                 draft=self.draft_number)
        if draft is None:
            raise RuntimeError(f"reasoner {getattr(self.reasoner, 'name', '?')} ended its stream without a Draft")
        if draft.avg_exit_steps:
            self.steps.append(draft.avg_exit_steps)
        return draft

    # --- the loop --------------------------------------------------------------------------------
    def events(self, text: str, history: list[Turn] | None, session_id: str | None) -> Iterator:
        settings = self.settings
        yield self.start("observe")
        question = observe(text, history, session_id)
        self.asked = rel.asked(question.text)
        # A follow-up ("and what colour are they?") names its subject in an earlier turn; word-level
        # relevance cannot resolve "they", so follow-ups are not judged for relevance (yet).
        self.follow_up = bool(question.history)
        if self.require_model:  # a model the user named must exist, whether or not this question needs it
            require_model(settings)
        yield self.finish("observe")
        if self.cancelled():
            return (yield self.stopped(question))

        yield self.start("remember")
        if self.kb is None:
            from lantern.knowledge import KnowledgeBase

            self.kb = KnowledgeBase.open(settings)
        recall = remember(question, self.kb, settings.top_k, settings.min_relevance)
        self.evidence = list(recall.evidence)
        yield self.finish("remember")
        for line in recall.notices:
            yield self.notice(line)
        from lantern.knowledge.injection import flagged_notice  # here: the knowledge package loads lancedb

        if (line := flagged_notice(self.evidence)) is not None:  # documents are data: say so when one holds orders to AI
            yield self.notice(line)
        yield EvidenceEvent(passages=self.evidence)
        if self.cancelled():
            return (yield self.stopped(question))

        tool_list = None
        if self.evidence or self.tools is not None or configured_servers(settings):
            embed = self.embed = memoized(self.kb.embedder)  # one cache: the reasoner's sentence vectors serve the verifier too
            if self.reasoner is None:
                self.reasoner, line = choose_reasoner(settings, embed, self.require_model)
                if line:
                    yield self.notice(line)
            if self.reasoner.uses_tools:
                tool_list = yield from self.discover_tools()
        if not self.evidence and not tool_list:
            return (yield self.final(question, answer=self.prompts["not_in_kb"], status="not_in_kb",
                                     model=getattr(self.reasoner, "name", ""), backend=getattr(self.reasoner, "backend", "")))

        yield self.start("reason")
        draft = yield from self.draft(question, None, tool_list)
        yield self.finish("reason")
        rounds = 0
        while (draft.tool_calls or draft.rejected_calls) and rounds < MAX_TOOL_ROUNDS and not self.cancelled():
            rounds += 1
            yield self.start("act")
            notes = yield from self.act(draft)
            yield self.finish("act")
            if self.cancelled():
                break
            yield self.start("reason")
            draft = yield from self.draft(question, notes or None, tool_list)
            yield self.finish("reason")
        if self.cancelled():
            return (yield self.stopped(question))

        claims = yield from self.check(draft, embed)
        if claims is None:
            return (yield self.stopped(question))
        for _ in range(settings.converge_rounds):
            kept, dropped = cv.partition(claims)
            if not dropped or not self.reasoner.rewrites or self.cancelled():
                break
            yield self.start("converge")
            retry = yield from self.draft(question, cv.feedback(dropped), None)
            yield self.finish("converge")
            if self.cancelled():
                return (yield self.stopped(question, claims))
            rechecked = yield from self.check(retry, embed)
            if rechecked is None:
                return (yield self.stopped(question, claims))
            claims = cv.better(claims, rechecked)
            draft = retry if claims is rechecked else draft

        yield self.start("converge")
        kept, dropped = cv.partition(claims)
        judged = rel.judge(self.asked, kept) if not self.follow_up else rel.Judgement("answered" if kept else "not_in_kb", kept, [])
        judged, answerability = self.answerable(question, judged)
        conflicts = rel.conflicts(self.asked, judged.answering)
        status = "partial" if judged.status == "answered" and dropped else judged.status
        if judged.answering and status == "answered" and not judged.related and not conflicts:
            final_text = draft.text  # every claim held and answers: the answer is the draft as the model wrote it
        elif judged.answering:  # what answers, what is missing, where the sources disagree
            final_text = " ".join(filter(None, [cv.render(judged.answering), judged.missing,
                                                *(cv.conflict_sentence(c) for c in conflicts)]))
        elif judged.related:  # supported sentences, none of which answers: related, not an answer
            final_text = self.prompts["not_answered"]
        else:  # evidence found and every sentence failed: say so, not that the KB has nothing
            final_text = self.prompts["nothing_verified" if dropped else "not_in_kb"]
        yield self.finish("converge")
        if dropped or " ".join(final_text.split()) != " ".join(self.shown.split()):
            yield RevisionEvent(text=final_text, dropped=dropped)
        yield self.final(question, answer=final_text, status=status, claims=judged.answering, dropped=dropped,
                         related=judged.related, missing=judged.missing, conflicts=conflicts, answerability=answerability,
                         model=draft.model, backend=self.reasoner.backend)

    def answerable(self, question: Question, judged: rel.Judgement) -> tuple[rel.Judgement, float | None]:
        """The learned check (lantern.verify.answerable) on an `answered` judgement: do the passages of
        its best answering claims answer the question? Below the model's threshold the answer becomes
        `not_in_kb`, its sentences listed as related. Returns the judgement and P(answerable), or None
        when the check did not run."""
        if not self.settings.answerability_check or judged.status != "answered" or not judged.answering or self.follow_up:
            return judged, None
        model, line = answerability_model()
        if model is None:
            if line not in self.notices:
                self.notices.append(line)
            return judged, None
        best = sorted(judged.answering, key=lambda c: -c.relevance)[:ANSWERABLE_CLAIMS]
        if any(c.source.startswith("tool:") for c in best):  # a tool's result answers by construction; the model read prose
            return judged, None
        probability = round(max(model.scores([(question.text, self.reader_view(c)) for c in best])), 4)
        if probability >= model.threshold:
            return judged, probability
        return rel.Judgement("not_in_kb", [], judged.answering + judged.related), probability

    def reader_view(self, claim: Claim) -> str:
        """What the answerability model reads for a claim: the window of the retrieved passage it was
        quoted from (else its own evidence span) around it, under the passage's heading path."""
        passage = self.passage_of(claim)
        if passage is None or claim.claim[:40] not in passage.text:
            return window(claim.evidence or claim.claim, claim.claim)
        return titled(passage.heading, window(passage.text, claim.claim))

    def passage_of(self, claim: Claim) -> Evidence | None:
        """The retrieved passage whose lines hold the claim's first line."""
        return next((e for e in self.evidence if e.source == claim.source and e.start_line <= claim.start_line <= e.end_line), None)

    def relevance_of(self, claim: Claim) -> float:
        """How much of the question the claim answers, its passage's heading counted (lantern.verify.relevance)."""
        passage = self.passage_of(claim)
        heading = passage.heading if passage is not None else ""
        if self._weight is None:
            self._weight = sentence_idf([e.text for e in self.evidence])  # rarity among the passages
        similarity = None
        if self.embed is not None:
            vectors = self.embed([self.asked.text, claim.claim])
            similarity = float(vectors[0] @ vectors[1])
        score = rel.relevance(self.asked, claim.claim, heading, self._weight, similarity)
        if claim.source.startswith("tool:") and rel.has_value(self.asked, claim.claim):
            # the model called the tool for this question; "4 * 24 is 96" answers "how many ..." in no words of it
            score = max(score, rel.COVERED)
        return score

    def discover_tools(self) -> Iterator:
        """The tool list for the model (None without tools); servers that fail to start are notices."""
        if self.tools is None:
            from lantern.toolcalls.client import shared_tools

            self.tools = shared_tools(self.settings)
        if self.tools is None:
            return None
        listed = self.tools.list_tools()
        for server, problem in sorted(getattr(self.tools, "problems", {}).items()):
            yield self.notice(f"MCP server {server} is unavailable ({problem}); its tools are not offered. `lantern doctor` shows more.")
        return listed or None

    def act(self, draft: Draft) -> Iterator:
        """Check and run the draft's tool calls; returns the notes the model sees in its next round."""
        notes: list[str] = []
        for rejected in draft.rejected_calls:
            yield ToolCallEvent(call=None, raw=rejected.raw, valid=False, error=rejected.error)
            notes.append(f"your tool call could not be read: {rejected.error}")
        for call in draft.tool_calls:
            problem = self.tools.check(call) if self.tools is not None else f"tool {call.name} is not available: no MCP servers are configured"
            if problem is None:
                problem = refusal(call, self.evidence, self.prompts["tool_call_prefix"])
            yield ToolCallEvent(call=call, valid=problem is None, error=problem)
            if problem:
                notes.append(problem)
                continue
            started = time.perf_counter()
            outcome = self.tools.call(call)
            number = None
            if outcome.is_error:
                notes.append(f"tool {call.name} failed: {outcome.content}")
            else:
                self.evidence.append(as_evidence(outcome, len(self.evidence) + 1))
                number = len(self.evidence)
            yield ToolResultEvent(call=call, content=outcome.content, is_error=outcome.is_error,
                                  seconds=round(time.perf_counter() - started, 4), evidence_number=number)
            if self.cancelled():
                break
        return notes

    def check(self, draft: Draft, embed) -> Iterator:
        """Verify the draft claim by claim (claim events); None when cancelled midway."""
        if self.verifier is None:
            from lantern.verify.support import Verifier

            judge = None
            if self.settings.verifier_model:
                from lantern.verify.judge import CrossEncoderJudge

                judge = CrossEncoderJudge(self.settings.verifier_model)
            elif self.settings.model_judge:
                judge = self.reasoner.judge(self.prompts["judge"], self.settings.exit_threshold)
            self.verifier = Verifier.from_settings(self.settings, judge=judge, embed=embed)
        yield self.start("verify")
        claims: list[Claim] = []
        for claim in check_claims(draft, self.evidence, self.verifier, self.prompts["refusal_markers"]):
            claim = claim.model_copy(update={"relevance": self.relevance_of(claim)})
            claims.append(claim)
            yield ClaimEvent(claim=claim, draft=self.draft_number)
            if self.cancelled():
                yield self.finish("verify")
                return None
        yield self.finish("verify")
        return claims
