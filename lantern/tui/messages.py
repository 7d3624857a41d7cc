"""The Messages workers post to the app: one class per answer-loop event, and the results of the
background jobs (opening the knowledge base, a session, a search).

A worker thread never touches a widget: it wraps what it computed in one of these and posts it;
the App's handler (`on_token_streamed`, ...) runs on the UI thread and updates the widgets. Every
loop message carries `turn`, the number of the answer it belongs to, so a straggler from a
cancelled answer cannot write into the next one.

Knows nothing about how events are made or shown.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class LoopMessage(Message):
    """One event of the answer loop (`lantern.events`), for answer number `turn`."""

    def __init__(self, turn: int, event: Any) -> None:
        super().__init__()
        self.turn = turn
        self.event = event


class StageChanged(LoopMessage):
    """stage: a stage started or finished."""


class EvidenceFound(LoopMessage):
    """evidence: the retrieved passages, numbered from 1."""


class TokenStreamed(LoopMessage):
    """token: text for the reader, with its exit step and draft number."""


class ThinkingStreamed(LoopMessage):
    """thinking: a thinking model's text, kept apart from the answer."""


class ToolCalled(LoopMessage):
    """tool_call: a call as parsed and checked (valid, or the error)."""


class ToolReturned(LoopMessage):
    """tool_result: what the call returned, and the passage number it became."""


class ClaimChecked(LoopMessage):
    """claim: one claim as the verifier judged it."""


class NoticeRaised(LoopMessage):
    """notice: a line the user should see."""


class AnswerRevised(LoopMessage):
    """revision: the text the reader is left with and the claims that were dropped."""


class AnswerFinished(LoopMessage):
    """answer: the final Answer (always last, also when cancelled)."""


BY_KIND = {"stage": StageChanged, "evidence": EvidenceFound, "token": TokenStreamed, "thinking": ThinkingStreamed,
           "tool_call": ToolCalled, "tool_result": ToolReturned, "claim": ClaimChecked, "notice": NoticeRaised,
           "revision": AnswerRevised, "answer": AnswerFinished}


def for_event(turn: int, event: Any) -> LoopMessage:
    return BY_KIND[event.kind](turn, event)


class AnswerFailed(Message):
    """The loop raised: `text` is the one line the CLI would print (`error: ...`)."""

    def __init__(self, turn: int, text: str) -> None:
        super().__init__()
        self.turn = turn
        self.text = text


class KnowledgeBaseOpened(Message):
    def __init__(self, chunks: int, files: int) -> None:
        super().__init__()
        self.chunks = chunks
        self.files = files


class ModelLocated(Message):
    """Where the configured reasoner stands before the first answer (e.g. no weights: extractive)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


class SessionLoaded(Message):
    """The earlier turns of the session the chat continues."""

    def __init__(self, name: str, turns: list) -> None:
        super().__init__()
        self.name = name
        self.turns = turns


class Problem(Message):
    """A background job failed: `text` is the one-line message, shown as a notification."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SearchDone(Message):
    def __init__(self, query: str, passages: list, notices: list[str]) -> None:
        super().__init__()
        self.query = query
        self.passages = passages
        self.notices = notices
