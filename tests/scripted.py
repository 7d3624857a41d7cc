"""What the answer-loop tests share: small documents, a scripted fake model, the calculator server.

`ScriptedReasoner` streams replies from a script word by word through the real ReaderStream (so
tool lines and thinking are sorted as a model's would be) and records what it was shown. The
`kb` and `tiny_checkpoint` fixtures that use these live in tests/conftest.py.
"""

import re
import sys
from pathlib import Path

from lantern.backends.text_stream import ReaderStream
from lantern.records import Draft
from lantern.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = {
    "ouro.md": "# Ouro\n\nOuro applies the same transformer layers four times for every token.\n\n"
    "## Early exit\n\nAn exit gate after each loop step gives the probability of stopping there.\n"
    "The model stops looping once the cumulative exit probability reaches the threshold.\n",
    "storage.md": "# Storage\n\nLantern keeps its knowledge base in LanceDB on local disk.\n",
}


class ScriptedReasoner:
    """A fake model: streams replies from a script word by word through the real ReaderStream (so
    tool lines and thinking are sorted as a model's would be), and records what it was shown. A
    reply may be a function of the evidence it is shown."""

    name = "scripted"
    backend = "scripted"
    rewrites = True
    uses_tools = True

    def __init__(self, *replies) -> None:
        self.replies = list(replies)
        self.calls: list[dict] = []

    def judge(self, template, exit_threshold):
        return None

    def stream(self, question, evidence, feedback=None, tools=None, cancel=None):
        self.calls.append({"evidence": list(evidence), "feedback": feedback, "tools": tools})
        if not self.replies:
            raise AssertionError("the reasoner was called more often than scripted")
        reply = self.replies.pop(0)
        text = reply(evidence) if callable(reply) else reply
        reader = ReaderStream()
        for word in re.findall(r"\S+\s*", text):
            yield from reader.feed(word)
            if cancel is not None and cancel.is_set():
                break
        yield from reader.finish()
        answer_text, thinking, calls, rejected = reader.result()
        yield Draft(text=answer_text, thinking=thinking, tool_calls=calls, rejected_calls=rejected, model=self.name,
                    cancelled=bool(cancel is not None and cancel.is_set()))


def numbered(result, needle):
    return next(i for i, e in enumerate(result.evidence, 1) if needle in e.text)


def numbered_from(evidence, needle):
    return next(i for i, e in enumerate(evidence, 1) if needle in e.text)


def calculator_settings(**more):
    return load_settings({"mcp_servers": {"calc": {"command": sys.executable, "args": [str(ROOT / "tools" / "calculator.py")]}}} | more)
