"""The typed events of one answer, as the loop produces them (see `lantern.loop.events`).

Every door (`lantern ask`, the chat TUI, the MCP and HTTP servers) renders these and nothing
else. Each event is a pydantic record with a `kind`; `Event` is their union, so a consumer in
Python can read an event line back with `EVENT.validate_json(line)` (all but the last: the
`answer` line is the flat object `lantern ask --json` prints, with `kind` added). The order
within one answer:

    stage(observe, started) ... stage(observe, finished)
    stage(remember, ...) evidence
    stage(reason, ...) thinking* token* tool_call* [stage(act) tool_result* stage(reason) token*]*
    stage(verify, ...) claim*
    [stage(converge) token* stage(verify) claim*]   (a rewrite round)
    stage(converge, ...) revision?
    answer                                          (always last, also when cancelled)

`notice` may come at any point. Token events carry `draft`: a rewrite or a draft after a tool
round starts a new draft number, and its tokens replace the earlier draft's on screen. The
`revision` event says which claims were dropped and gives the text the reader is left with.

This module knows nothing about how events are produced.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from lantern.records import Answer, Claim, Evidence, ToolCall

STAGES = ("observe", "remember", "reason", "act", "verify", "converge")


class StageEvent(BaseModel):
    kind: Literal["stage"] = "stage"
    name: Literal["observe", "remember", "reason", "act", "verify", "converge"]
    state: Literal["started", "finished"]
    seconds: float = 0.0
    """For `finished`: how long this run of the stage took."""


class EvidenceEvent(BaseModel):
    kind: Literal["evidence"] = "evidence"
    passages: list[Evidence]
    """Numbered from 1 in this order; tool results that join later come as `tool_result` events."""


class TokenEvent(BaseModel):
    kind: Literal["token"] = "token"
    text: str
    """Text meant for the reader (no <think> text, no tool-call lines)."""
    exit_step: int | None = None
    """1-based loop step at which the looped model stopped for this token; None for other models."""
    seconds: float
    """Seconds since the answer started."""
    draft: int = 0
    """Which draft this token belongs to; a higher number replaces the text of the earlier ones."""


class ThinkingEvent(BaseModel):
    kind: Literal["thinking"] = "thinking"
    text: str
    seconds: float
    draft: int = 0


class ToolCallEvent(BaseModel):
    kind: Literal["tool_call"] = "tool_call"
    call: ToolCall | None
    """The call as parsed; None when the model's line could not be parsed at all."""
    raw: str = ""
    """What the model wrote, when it came as text."""
    valid: bool
    error: str | None = None
    """Why the call will not run, naming the field when the arguments are at fault."""


class ToolResultEvent(BaseModel):
    kind: Literal["tool_result"] = "tool_result"
    call: ToolCall
    content: str
    is_error: bool = False
    seconds: float = 0.0
    evidence_number: int | None = None
    """The passage number the result was given as evidence (when it succeeded)."""


class ClaimEvent(BaseModel):
    kind: Literal["claim"] = "claim"
    claim: Claim
    draft: int = 0


class NoticeEvent(BaseModel):
    kind: Literal["notice"] = "notice"
    text: str


class RevisionEvent(BaseModel):
    kind: Literal["revision"] = "revision"
    text: str
    """The answer text the reader is left with (replaces the streamed draft)."""
    dropped: list[Claim] = Field(default_factory=list)
    """Claims of the streamed draft that are not in `text`: strike them through, or remove them."""


class AnswerEvent(BaseModel):
    kind: Literal["answer"] = "answer"
    answer: Answer

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind} | public_answer(self.answer)


Event = Annotated[
    Union[StageEvent, EvidenceEvent, TokenEvent, ThinkingEvent, ToolCallEvent, ToolResultEvent, ClaimEvent, NoticeEvent,
          RevisionEvent, AnswerEvent],
    Field(discriminator="kind"),
]
EVENT: TypeAdapter = TypeAdapter(Event)

CLAIM_FIELDS = {"claim", "evidence", "confidence", "relevance", "verdict", "source", "start_line", "end_line", "citations", "reason"}


def public_answer(answer: Answer) -> dict[str, Any]:
    """The answer as `lantern ask --json` prints it (and the last `--events` line carries)."""
    data = answer.model_dump(mode="json", include={"question", "answer", "status", "mode", "model", "backend", "timings",
                                                   "avg_exit_steps", "notices"})
    data["claims"] = [c.model_dump(mode="json", include=CLAIM_FIELDS) for c in answer.claims]
    data["dropped"] = [c.model_dump(mode="json", include=CLAIM_FIELDS) for c in answer.dropped]
    data["related"] = [c.model_dump(mode="json", include=CLAIM_FIELDS) for c in answer.related]
    data["missing"] = answer.missing
    data["conflicts"] = [c.model_dump(mode="json") for c in answer.conflicts]
    data["sources"] = sorted({c.source for c in answer.claims if c.source})
    return data


def to_json(event) -> str:
    """One event as one line of JSON (the `--events` wire format)."""
    if isinstance(event, AnswerEvent):
        import json

        return json.dumps(event.public(), ensure_ascii=False)
    return event.model_dump_json()
