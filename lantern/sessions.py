"""Named sessions: the turns of a conversation kept between `lantern ask --session NAME` calls.

A session is one JSON-lines file, `LANTERN_HOME/sessions/NAME.jsonl`, one `Turn` per line, only
ever appended to (and flushed to disk) after an answer is complete, so an interrupted ask leaves
the earlier turns as they were. A line that does not parse is reported with its number and never
rewritten; only an unfinished last line (a write that was killed) is passed over, and cut before
the next append (a whole turn there only gets its newline). The Observe stage reads the turns to resolve follow-ups ("and how fast is it?"); the
reasoning prompt shows the last few.

This module knows nothing about how turns are used.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pydantic import ValidationError

from lantern.errors import LanternError
from lantern.records import Turn

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
MAX_TURNS_READ = 40
"""Only the end of a long session is read: follow-ups refer to the last turns, and the prompt shows six."""


def session_file(home: Path, name: str) -> Path:
    if not _NAME.match(name) or ".." in name:
        raise LanternError(f"session name {name!r} is not allowed; use letters, digits, '-', '_' or '.' (up to 64), e.g. --session notes.")
    return home / "sessions" / f"{name}.jsonl"


def load_turns(home: Path, name: str) -> list[Turn]:
    """The session's last `MAX_TURNS_READ` turns, oldest first; [] for a new session."""
    path = session_file(home, name)
    if not path.exists():
        return []
    turns: list[Turn] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LanternError(f"cannot read session file {path} ({exc.__class__.__name__}); fix it or start another session.") from exc
    complete = raw_ends_with_newline(path)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            turns.append(Turn.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            if number == len(lines) and not complete:
                break  # the tail of a write that was killed: the next append cuts it
            raise LanternError(f"session file {path} line {number} is not a turn ({exc.__class__.__name__}); fix or delete that line, or start another session.") from exc
    return turns[-MAX_TURNS_READ:]


def exchange(question: str, answer: str) -> list[Turn]:
    """The two turns one ask adds. The answer's [n] markers are left out: they number that answer's
    passages, and in a later prompt they would point at other ones."""
    return [Turn(role="user", text=question), Turn(role="assistant", text=_CITATION.sub("", answer).strip())]


def append_turns(home: Path, name: str, turns: list[Turn]) -> None:
    """Add `turns` to the end of the session file, in one write, flushed to disk."""
    path = session_file(home, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(turn.model_dump(), ensure_ascii=False) + "\n" for turn in turns)
    if path.exists() and not raw_ends_with_newline(path):
        _finish_last_line(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def raw_ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _finish_last_line(path: Path) -> None:
    """A last line without its newline: a whole turn (a hand edit) gets the newline; anything else is
    the unfinished half of a record whose write was killed (every write here ends with a newline),
    and is cut."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    try:
        Turn.model_validate(json.loads(data[cut:]))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        os.truncate(path, cut)
        return
    with path.open("ab") as handle:
        handle.write(b"\n")
