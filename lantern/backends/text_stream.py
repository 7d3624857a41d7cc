"""A model's raw streamed text -> what the reader sees, the thinking, and the tool requests.

Models write three things into one stream: `<think>...</think>` reasoning (Thinking variants
start inside it when their chat template opens it), tool requests (`CALL_TOOL name {json}` up to
the end of its line, or a `<tool_call>...</tool_call>` block), and the answer. `ReaderStream`
sorts each piece as it arrives: it holds back only the few characters that could still turn out
to be the start of a marker, so answer text reaches the reader within a token or two, and tool
requests never do. Every piece keeps the exit step of the token it came from.

`finish()` returns the Draft fields: the answer text, the thinking, and the parsed tool calls
(with the ones that could not be parsed, and why).

This module knows nothing about models or tools' schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lantern.records import RejectedCall, ToolCall
from lantern.toolcalls.validate import parse_tool_calls

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass
class Piece:
    """A stretch of generated text for one channel, from one generated token."""

    text: str
    channel: Literal["answer", "thinking"] = "answer"
    exit_step: int | None = None
    """1-based loop step the token exited at (looped models only)."""


class ReaderStream:
    def __init__(self, tool_prefix: str = "CALL_TOOL", thinking_first: bool = False) -> None:
        self.tool_markers = {tool_prefix: "\n", "<tool_call>": "</tool_call>"}
        self.state: Literal["start", "thinking", "answer", "tool"] = "thinking" if thinking_first else "start"
        self._end_marker = ""
        self._held: list[tuple[str, int | None]] = []  # text not yet sorted, with each token's exit step
        self.answer: list[str] = []
        self.thinking: list[str] = []
        self.tool_text: list[str] = []

    # --- feeding ----------------------------------------------------------------------------------
    def feed(self, text: str, exit_step: int | None = None) -> list[Piece]:
        if text:
            self._held.append((text, exit_step))
        return self._sort(final=False)

    def finish(self) -> list[Piece]:
        """Everything still held, sorted as it stands (an unclosed <think> is all thinking)."""
        return self._sort(final=True)

    def result(self) -> tuple[str, str, list[ToolCall], list[RejectedCall]]:
        """(answer text, thinking text, tool calls, rejected calls) of everything fed."""
        calls, rejected = parse_tool_calls("\n".join(self.tool_text), next(iter(self.tool_markers)))
        return "".join(self.answer).strip(), "".join(self.thinking).strip(), calls, rejected

    # --- sorting ----------------------------------------------------------------------------------
    def _buffer(self) -> str:
        return "".join(t for t, _ in self._held)

    def _take(self, n: int) -> list[tuple[str, int | None]]:
        """Remove the first n held characters, keeping each token's own exit step."""
        out = []
        while n > 0 and self._held:
            text, step = self._held[0]
            if len(text) <= n:
                out.append(self._held.pop(0))
                n -= len(text)
            else:
                out.append((text[:n], step))
                self._held[0] = (text[n:], step)
                n = 0
        return out

    def _emit(self, n: int, channel: Literal["answer", "thinking"]) -> list[Piece]:
        taken = self._take(n)
        (self.answer if channel == "answer" else self.thinking).extend(t for t, _ in taken)
        return [Piece(t, channel, s) for t, s in taken if t]

    def _sort(self, final: bool) -> list[Piece]:
        out: list[Piece] = []
        while self._held:
            buffer = self._buffer()
            if self.state == "start":
                stripped = buffer.lstrip()
                if stripped.startswith(THINK_OPEN):
                    self._take(len(buffer) - len(stripped) + len(THINK_OPEN))
                    self.state = "thinking"
                elif THINK_OPEN.startswith(stripped) and not final:
                    break  # could still be "<think>"
                else:
                    self.state = "answer"
            elif self.state == "thinking":
                at = buffer.find(THINK_CLOSE)
                if at >= 0:
                    out += self._emit(at, "thinking")
                    self._take(len(THINK_CLOSE))
                    rest = self._buffer()
                    self._take(len(rest) - len(rest.lstrip()))  # the blank line after </think>
                    self.state = "answer"
                    continue
                keep = 0 if final else _partial_suffix(buffer, [THINK_CLOSE])
                out += self._emit(len(buffer) - keep, "thinking")
                break
            elif self.state == "answer":
                starts = [(buffer.find(m), m) for m in self.tool_markers if buffer.find(m) >= 0]
                if starts:
                    at, marker = min(starts)
                    out += self._emit(_before_fence(buffer, at), "answer")
                    self._take(at - _before_fence(buffer, at))  # an opening backtick belongs to the call
                    self._end_marker = self.tool_markers[marker]
                    self.state = "tool"
                    continue
                keep = 0 if final else _partial_suffix(buffer, list(self.tool_markers) + ["`"])
                out += self._emit(len(buffer) - keep, "answer")
                break
            else:  # tool: up to its end marker
                at = buffer.find(self._end_marker)
                if at < 0 and not final:
                    break
                end = len(buffer) if at < 0 else at + len(self._end_marker)
                self.tool_text.append("".join(t for t, _ in self._take(end)).strip())
                self.state = "answer"
        return out


def _partial_suffix(buffer: str, markers: list[str]) -> int:
    """Length of the longest end of `buffer` that is the beginning of one of `markers`."""
    best = 0
    for marker in markers:
        for n in range(min(len(marker), len(buffer)), 0, -1):
            if marker.startswith(buffer[-n:]):
                best = max(best, n)
                break
    return best


def _before_fence(buffer: str, at: int) -> int:
    """Where a tool request really starts: before the backticks that fence it, if any."""
    while at > 0 and buffer[at - 1] == "`":
        at -= 1
    return at
