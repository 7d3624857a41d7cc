"""Observe: the user's words and the session so far -> a Question and the query to retrieve with.

A follow-up ("and how fast is it?") means little on its own, so when a question is short or opens
with a pronoun/connective and there is an earlier user turn, the retrieval query carries that
earlier question too. This module knows nothing about retrieval itself.
"""

from __future__ import annotations

import re

from lantern.records import Question, Turn

_FOLLOW_UP = re.compile(r"^(and|but|also|so|what about|how about|why|it|its|it's|they|them|their|this|that|these|those|he|she|his|her)\b", re.IGNORECASE)


def observe(text: str, history: list[Turn] | None = None, session_id: str | None = None) -> Question:
    cleaned = " ".join(text.split())
    if not cleaned:
        from lantern.errors import LanternError

        raise LanternError("the question is empty; ask something, e.g. lantern ask \"What is DEEP mode?\"")
    return Question(text=cleaned, session_id=session_id, history=list(history or []))


def retrieval_query(question: Question) -> str:
    earlier = [turn.text for turn in question.history if turn.role == "user"]
    if earlier and (len(question.text.split()) <= 6 or _FOLLOW_UP.match(question.text)):
        return f"{earlier[-1]} {question.text}"
    return question.text
