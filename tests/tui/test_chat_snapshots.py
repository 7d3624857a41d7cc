"""SVG snapshots of the chat's main screen: empty, answered (claims, a dropped claim struck, a
rejected tool call, the depth histogram), answered with the depth tint on, and cancelled.

The loop is replaced by a fixed stream of events (the same records the loop yields, with fixed
times and paths), so a screenshot changes only when the rendering does. Update the pictures with
`pytest tests/tui/test_chat_snapshots.py --snapshot-update` and look at them before committing.
"""

import time

import pytest

pytest.importorskip("pytest_textual_snapshot", reason="pytest-textual-snapshot is not installed")

from chat_helpers import ask, finished, until  # noqa: E402

from lantern.events import (AnswerEvent, ClaimEvent, EvidenceEvent, RevisionEvent, StageEvent, TokenEvent,  # noqa: E402
                            ToolCallEvent)
from lantern.records import Answer, Claim, Evidence, ToolCall  # noqa: E402
from lantern.settings import load_settings  # noqa: E402
from lantern.tui.app import LanternChat  # noqa: E402

SIZE = (140, 45)
QUESTION = "How does Ouro decide when to stop looping?"
PASSAGES = [
    Evidence(chunk_id="a", source="docs/ouro.md", text="Ouro applies the same transformer layers four times for every token.",
             start_line=3, end_line=3, heading="Ouro", score=0.0331),
    Evidence(chunk_id="b", source="docs/ouro.md", heading="Ouro > Early exit", score=0.0325, start_line=7, end_line=8,
             text="An exit gate after each loop step gives the probability of stopping there.\n"
                  "The model stops looping once the cumulative exit probability reaches the threshold."),
]
WORDS = [("Ouro ", 1), ("applies ", 2), ("the ", 1), ("same ", 1), ("layers ", 3), ("four ", 4), ("times ", 2), ("for ", 1),
         ("every ", 1), ("token ", 2), ("[1]. ", 1), ("It ", 1), ("stops ", 2), ("once ", 3), ("the ", 1), ("cumulative ", 4),
         ("exit ", 2), ("probability ", 3), ("reaches ", 2), ("the ", 1), ("threshold ", 2), ("[2]. ", 1), ("Napoleon ", 4),
         ("built ", 3), ("it ", 1), ("[2].", 2)]
KEPT = [
    Claim(claim="Ouro applies the same layers four times for every token.", citations=[1], evidence=PASSAGES[0].text,
          source="docs/ouro.md", start_line=3, end_line=3, confidence=0.93, verdict="supported"),
    Claim(claim="It stops once the cumulative exit probability reaches the threshold.", citations=[2],
          evidence="The model stops looping once the cumulative exit probability reaches the threshold.",
          source="docs/ouro.md", start_line=8, end_line=8, confidence=0.81, verdict="supported"),
]
DROPPED = [Claim(claim="Napoleon built it.", citations=[2], evidence=PASSAGES[1].text.split("\n")[0], source="docs/ouro.md",
                 start_line=7, end_line=7, confidence=0.08, verdict="unsupported")]
TIMINGS = {"observe": 0.001, "remember": 0.412, "reason": 13.0, "act": 0.002, "verify": 0.318, "converge": 0.004}


def stage(name):
    yield StageEvent(name=name, state="started")
    yield StageEvent(name=name, state="finished", seconds=TIMINGS[name])


def replay(question, settings, history=None, cancel=None, *, stop_after=None, **_):
    """The events of one answer, as the loop would yield them; with `stop_after`, the stream waits
    for the user's cancel after that many tokens and ends cancelled, as the loop does."""
    yield from stage("observe")
    yield from stage("remember")
    yield EvidenceEvent(passages=PASSAGES)
    yield StageEvent(name="reason", state="started")
    yield ToolCallEvent(call=ToolCall(name="calculate", arguments={"expr": 4}), valid=False,
                        error="invalid arguments for calculate: expr: unknown argument; expected expression")
    shown = ""
    for n, (text, step) in enumerate(WORDS):
        if n == stop_after:
            assert cancel.wait(30)
            answer = Answer(question=question, answer=shown.strip(), status="cancelled", mode="deep", model="ouro-1.4b",
                            backend="ouro", evidence=PASSAGES, timings={"observe": 0.001, "remember": 0.412, "reason": 5.5, "total": 5.913})
            yield AnswerEvent(answer=answer)
            return
        shown += text
        yield TokenEvent(text=text, exit_step=step, seconds=0.5 * (n + 1))
    yield StageEvent(name="reason", state="finished", seconds=TIMINGS["reason"])
    yield StageEvent(name="verify", state="started")
    for claim in KEPT + DROPPED:
        yield ClaimEvent(claim=claim)
    yield StageEvent(name="verify", state="finished", seconds=TIMINGS["verify"])
    yield from stage("converge")
    final = "Ouro applies the same layers four times for every token [1]. It stops once the cumulative exit probability reaches the threshold [2]."
    yield RevisionEvent(text=final, dropped=DROPPED)
    steps = [s for _, s in WORDS]
    answer = Answer(question=question, answer=final, status="partial", claims=KEPT, dropped=DROPPED, mode="deep", model="ouro-1.4b",
                    backend="ouro", evidence=PASSAGES, timings=TIMINGS | {"total": 13.737}, avg_exit_steps=sum(steps) / len(steps))
    yield AnswerEvent(answer=answer)


class FixedKB:
    """What the status bar asks of a knowledge base, with fixed answers."""

    def count(self):
        return 2

    def files(self):
        return ["docs/ouro.md", "docs/storage.md"]

    def embed_query(self, text):
        return None

    def source_text(self, source):
        return None


@pytest.fixture
def chat(monkeypatch):
    def make(stop_after=None):
        import lantern.loop

        monkeypatch.setattr(lantern.loop, "events", lambda *a, **k: replay(*a, stop_after=stop_after, **k))
        return LanternChat(load_settings(), session="snapshot", kb=FixedKB())

    return make


async def ready(pilot):
    pilot.app.query_one("#prompt").cursor_blink = False  # a blinking cursor would make the pictures differ at random
    await until(pilot, lambda: "KB 2 chunks" in pilot.app.query_one("#status").render().plain, "the warm-up")


async def settled(pilot, timeout: float = 60.0):
    """The answer is over and the layout has caught up with it (rows re-wrap, the view scrolls to
    its anchor): the screen is the same picture in four looks in a row, 0.2 s apart. A fixed
    number of pauses was not enough on a loaded machine (fresh-clone CI runs saw the answered
    screen one layout early twice), so this waits on what the snapshot itself will record."""
    await finished(pilot)
    deadline = time.monotonic() + timeout
    previous, same = None, 0
    while same < 3:
        await pilot.pause(0.2)
        await pilot.wait_for_scheduled_animations()
        picture = pilot.app.export_screenshot()
        same = same + 1 if picture == previous else 0
        previous = picture
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen kept changing for {timeout:.0f}s after the answer finished")


def test_empty_screen(snap_compare, chat):
    assert snap_compare(chat(), terminal_size=SIZE, run_before=ready)


def test_answered_screen(snap_compare, chat):
    async def answered(pilot):
        await ready(pilot)
        await ask(pilot, QUESTION)
        await settled(pilot)

    assert snap_compare(chat(), terminal_size=SIZE, run_before=answered)


def test_answered_screen_with_the_depth_tint(snap_compare, chat):
    async def tinted(pilot):
        await ready(pilot)
        await ask(pilot, QUESTION)
        await settled(pilot)
        await pilot.press("ctrl+l")

    assert snap_compare(chat(), terminal_size=SIZE, run_before=tinted)


def test_cancelled_screen(snap_compare, chat):
    async def cancelled(pilot):
        await ready(pilot)
        await ask(pilot, QUESTION)
        await until(pilot, lambda: len(pilot.app.view.tokens) == 9, "nine tokens")
        await pilot.press("escape")
        await settled(pilot)

    assert snap_compare(chat(stop_after=9), terminal_size=SIZE, run_before=cancelled)
