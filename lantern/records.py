"""The typed records that flow between the stages of the answer loop.

Observe -> Question; Remember -> list[Evidence]; Reason -> Draft; Act -> ToolCall / ToolResult;
Verify -> list[Claim]; Converge -> Answer. Records are plain data: they know nothing about how a
stage produces or consumes them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field


class Turn(BaseModel):
    """One earlier exchange in a session."""

    role: Literal["user", "assistant"]
    text: str


class Question(BaseModel):
    """What the user asked, with the session it belongs to."""

    text: str
    session_id: str | None = None
    history: list[Turn] = Field(default_factory=list)


class Flag(BaseModel):
    """A span of a chunk's text addressed to an AI system rather than to a reader (lantern.knowledge.injection).
    Flagged text is data: never quoted as evidence, never a reason to call a tool."""

    start: int
    """Character offset of the span in the chunk text (inclusive)."""
    end: int
    """Character offset just past the span."""
    reason: str
    """What it does, for people: e.g. 'asks the assistant to change its reply's format'."""
    kind: str
    """Machine tag: role_marker, override, tool_call, secret, fetch, reply, hidden_comment, invisible, fence, addressed_to_ai."""


class Evidence(BaseModel):
    """One retrieved passage: an exact span of a real file in the knowledge base."""

    chunk_id: str
    source: str
    """Path of the file the passage was cut from, as ingested."""
    text: str
    """The passage, verbatim from the file (lines start_line..end_line, 1-based, inclusive)."""
    start_line: int
    end_line: int
    heading: str = ""
    """Heading path of the section, e.g. 'User guide > Commands'."""
    score: float = 0.0
    """Retrieval score; higher is better. Comparable only within one result list."""
    flags: list[Flag] = Field(default_factory=list)
    """Spans of `text` flagged at ingestion as instructions to AI systems (offsets into `text`)."""


class Verdict(str, Enum):
    supported = "supported"
    unsupported = "unsupported"
    contradicted = "contradicted"


class ToolCall(BaseModel):
    """A tool call requested by the model, before validation."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(BaseModel):
    """What a tool returned (or why it failed)."""

    call: ToolCall
    content: str
    is_error: bool = False
    structured: dict[str, Any] | None = None


class RejectedCall(BaseModel):
    """A tool request the model wrote that could not be parsed into a call."""

    raw: str
    error: str


class Draft(BaseModel):
    """What the Reason stage produced for one round: answer text with [n] citations, or tool requests."""

    text: str
    """Text for the reader: no thinking, no tool-call lines."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    rejected_calls: list[RejectedCall] = Field(default_factory=list)
    thinking: str = ""
    model: str = ""
    avg_exit_steps: float | None = None
    tokens: int = 0
    cancelled: bool = False
    """Generation stopped early because the caller cancelled the answer."""


class Claim(BaseModel):
    """One atomic claim of an answer, with the evidence that was checked against it."""

    claim: str
    citations: list[int] = Field(default_factory=list)
    """Passage numbers the model cited (1-based, into the evidence list it was shown)."""
    evidence: str = ""
    """Best-supporting span, quoted verbatim from the source file."""
    source: str = ""
    start_line: int = 0
    end_line: int = 0
    confidence: float = 0.0
    verdict: Verdict = Verdict.unsupported
    reason: str = ""
    """Why the verifier decided without weighing evidence (e.g. the claim cites a passage that does not exist)."""
    relevance: float = 0.0
    """How much of the question the claim answers, in [0, 1] (lantern.verify.relevance): a supported
    claim below the answering threshold is listed as related, not as the answer."""


class ConflictValue(BaseModel):
    """One source's value in a conflict."""

    value: str
    claim: str
    source: str
    start_line: int = 0
    end_line: int = 0


class Conflict(BaseModel):
    """Supported claims from different sources giving different values for the same thing."""

    about: str
    """What the values are of ("height", "year")."""
    values: list[ConflictValue]


class Answer(BaseModel):
    """The final, verified answer to one question."""

    question: str
    answer: str
    status: Literal["answered", "partial", "not_in_kb", "cancelled"]
    claims: list[Claim] = Field(default_factory=list)
    dropped: list[Claim] = Field(default_factory=list)
    """Claims the verifier did not accept; listed as not supported by the documents."""
    related: list[Claim] = Field(default_factory=list)
    """Supported claims that do not answer the question ("also in the documents"); for `not_in_kb`,
    the closest passages' sentences."""
    missing: str = ""
    """For `partial`: one sentence naming what the documents do not give."""
    conflicts: list[Conflict] = Field(default_factory=list)
    """Values for the same thing on which the sources disagree."""
    answerability: float | None = None
    """P(the passages answer the question) from the learned check (lantern.verify.answerable), when it ran."""
    mode: str = "deep"
    model: str = ""
    backend: str = ""
    """Which reasoning backend drafted the answer: ouro, hf, openai, or extractive (no model)."""
    timings: dict[str, float] = Field(default_factory=dict)
    """Seconds spent per stage."""
    avg_exit_steps: float | None = None
    """Average loop steps per generated token (1-based), when a looped model reasoned."""
    evidence: list[Evidence] = Field(default_factory=list)
    """The passages the model was shown, numbered from 1 in this order."""
    notices: list[str] = Field(default_factory=list)
    """Things the user should know once (e.g. the reasoning model is not installed)."""
