"""The chat TUI driven by Textual's Pilot over the real answer loop: a real knowledge base and
verifier, the scripted model (or a tiny random Ouro checkpoint), a real MCP tool server. Each test
looks at what the widgets show, so it fails when the screen stops showing it."""

import subprocess
import sys

import pytest
from rich.style import Style
from chat_helpers import GatedReasoner, HeldReasoner, ask, finished, link_cell, plain, until
from scripted import ROOT, ScriptedReasoner, calculator_settings, numbered_from
from textual.widgets import TextArea

from lantern.backends.ouro import OuroReasoner, loaded
from lantern.records import Turn
from lantern.sessions import append_turns, exchange, load_turns
from lantern.settings import load_settings
from lantern.tui import depth
from lantern.tui.app import LanternChat
from lantern.tui.widgets.answer_view import AnswerView
from lantern.tui.widgets.depth_legend import DepthLegend
from lantern.tui.widgets.evidence_panel import EvidencePanel
from lantern.tui.widgets.help_screen import HelpScreen
from lantern.tui.widgets.search_screen import SearchScreen
from lantern.tui.widgets.session_picker import SessionPicker
from lantern.tui.widgets.source_viewer import SourceViewer
from lantern.tui.widgets.stage_bar import StageBar
from lantern.tui.widgets.status_bar import StatusBar
from lantern.tui.widgets.tool_log import ToolLog

pytestmark = pytest.mark.anyio
SIZE = (140, 45)
QUOTE = "The model stops looping once the cumulative exit probability reaches the threshold."


def cited(evidence):
    return f"The model stops looping once the cumulative exit probability reaches the threshold [{numbered_from(evidence, 'cumulative')}]."


async def test_a_question_streams_its_answer_then_its_claims_and_a_claim_opens_its_source_at_the_quote(kb):
    reasoner = GatedReasoner(cited, hold_after=3)
    app = LanternChat(load_settings(), session="first", reasoner=reasoner, kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        view = app.view
        # Mid-stream: the first words are on screen, the rest is not written yet, nothing is verified.
        await until(pilot, lambda: view.markdown.source.startswith("The model stops"), "the first tokens")
        assert app.running and "threshold" not in view.markdown.source and not view.claims.claims
        assert "reason" in plain(app.query_one(StageBar))
        reasoner.gate.set()
        await finished(pilot)
        n = numbered_from(view.passages, "cumulative")
        assert view.markdown.source == QUOTE[:-1] + f" \\[[{n}](cite:{n})\\]."  # the mark became a link to passage n
        [claim] = view.claims.claims
        assert claim.verdict == "supported" and claim.source.endswith("ouro.md") and claim.start_line == 8
        row = [str(cell) for cell in view.claims.get_row_at(0)]
        assert row[1].endswith(f"{claim.confidence:.2f}") and row[2] == "supported" and row[3].endswith("ouro.md:8")
        assert plain(app.query_one(StageBar)).split()[-2] == "answered"
        assert len(app.query_one(EvidencePanel).passages) == len(view.passages) >= n

        await pilot.press("ctrl+o")  # the selected (first) claim's source
        await until(pilot, lambda: isinstance(app.screen, SourceViewer), "the source viewer")
        await pilot.pause(0.2)
        area = app.screen.query_one(TextArea)
        assert area.selected_text == QUOTE and area.selection.start == (7, 0)  # line 8, highlighted
        assert area.scroll_offset.y <= 7 < area.scroll_offset.y + area.scrollable_content_region.height
        assert "ouro.md:8" in plain(app.screen.query_one("#source-title"))
        await pilot.press("escape")
        assert not isinstance(app.screen, SourceViewer)

        # Enter on a claims row opens the same source; a click on the [n] mark selects passage n.
        view.claims.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SourceViewer), "the viewer from the claims table")
        await pilot.press("escape")
        await until(pilot, lambda: link_cell(app, f"cite:{n}"), "the [n] link on screen")
        await pilot.click(offset=link_cell(app, f"cite:{n}"))
        await pilot.pause(0.2)
        panel = app.query_one(EvidencePanel)
        assert panel.highlighted == n - 1 and app.focused is panel
    # The finished answer joined the session, as `lantern ask --session first` would have added it.
    assert load_turns(app.settings.home, "first") == exchange("When does Ouro stop looping?", cited(view.passages))


async def test_a_dropped_claim_ends_struck_through_and_the_rewrite_replaces_the_first_draft(kb):
    good = "Ouro applies the same transformer layers four times for every token [1]."
    bad = "The exit gate was invented in 1850 by Napoleon [1]."
    app = LanternChat(load_settings(), session="s", reasoner=ScriptedReasoner(f"{good} {bad}", bad), kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "How many times does Ouro apply its layers?")
        view = await finished(pilot)
        source = view.markdown.source
        assert source.startswith("Ouro applies the same transformer layers four times for every token")
        assert "~~The exit gate was invented in 1850 by Napoleon.~~" in source and source.count("Napoleon") == 1
        assert view.draft == 1  # the rewrite round streamed as a new draft that replaced the first
        kept, dropped = view.result.claims, view.result.dropped
        assert [c for c, _ in view.claims.rows_shown] == kept + dropped and view.claims.rows_shown[-1][1] is True
        assert "partial" in plain(view.query_one(".state"))


async def test_escape_cancels_a_tiny_checkpoint_mid_stream_and_marks_the_partial_answer(kb, tiny):
    settings = load_settings({"model": str(tiny), "dtype": "float32", "max_new_tokens": 400, "mode": "fast"})
    # The real checkpoint, held after its third token until Escape is pressed: on a loaded machine
    # the whole draft could otherwise be written before the key arrives.
    reasoner = HeldReasoner(OuroReasoner(loaded(str(tiny), "cpu", "float32", "none"), settings, name=str(tiny)), hold_after=3)
    app = LanternChat(settings, session="cancelled", kb=kb, reasoner=reasoner)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        await until(pilot, lambda: app.view is not None and len(app.view.tokens) >= 3, "three tokens")
        await pilot.press("escape")
        shown_at_escape = len(app.view.tokens)
        reasoner.gate.set()
        view = await finished(pilot)
        assert view.result.status == "cancelled" and view.has_class("-cancelled")
        assert len(view.tokens) <= shown_at_escape + 2  # the token in flight, and one already posted
        assert view.result.answer == "".join(t for t, _ in view.tokens).strip()
        assert view.markdown.source.strip() and "cancelled" in plain(view.query_one(".state"))
        assert plain(app.query_one(StageBar)).split()[-2] == "cancelled"
        assert not view.claims.claims and "verify" not in view.result.timings
        # Keys keep working after the cancel, and the next question is taken.
        await pilot.press("ctrl+t")
        assert app.settings.mode == "deep"
    assert not (app.settings.home / "sessions" / "cancelled.jsonl").exists()  # a cancelled answer is not saved


async def test_deep_tokens_are_tinted_by_exit_step_with_a_histogram_and_a_legend(kb, tiny):
    settings = load_settings({"model": str(tiny), "dtype": "float32", "max_new_tokens": 16, "mode": "deep", "converge_rounds": 0})
    app = LanternChat(settings, session="depth", kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        steps = [s for _, s in view.tokens]
        assert steps and all(1 <= s <= 4 for s in steps) and len(set(steps)) > 1
        counts = view.histogram.counts
        assert [counts.counts[s] for s in depth.STEPS] == [steps.count(s) for s in depth.STEPS]
        assert f"avg {sum(steps) / len(steps):.2f} · {len(steps)} tokens" in plain(view.histogram)
        assert f"exit depth {view.result.avg_exit_steps:.2f}" in plain(app.query_one(StatusBar))
        legend = app.query_one(DepthLegend)
        assert not legend.display and not view.has_class("-depth")
        await pilot.press("ctrl+l")
        assert legend.display and view.has_class("-depth") and "loop step it exited at" in plain(legend)
        tinted = view.query_one(".tinted").render()
        styles = [Style.parse(str(span.style)) for span in tinted.spans]
        colours = {style.color.triplet for style in styles if style.color}  # (a closing note may follow, uncoloured)
        assert colours == {Style.parse(depth.COLOURS[s]).color.triplet for s in set(steps)}  # a colour per exit step seen
        assert not view.markdown.display or view.markdown.styles.display == "none"
        await pilot.press("ctrl+l")
        assert not legend.display and not view.has_class("-depth")


async def test_without_weights_the_extractive_mode_shows_the_same_panels_and_the_ask_notice(kb):
    app = LanternChat(load_settings(), session="x", kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "not installed: extractive" in plain(app.query_one(StatusBar)), "the model status")
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        assert view.result.backend == "extractive" and view.claims.claims and view.passages
        notice = ("note: The reasoning model ouro-1.4b is not installed, so this answer quotes the best evidence sentences "
                  "instead of reasoning over them. Get the model with `lantern model pull ouro-1.4b` (needs internet once).")
        assert notice in [n.message for n in app._notifications] and notice in plain(view.query_one(".notes"))
        assert depth.NO_DEPTH in plain(view.histogram)
        await pilot.press("ctrl+l")
        assert depth.NO_DEPTH in plain(app.query_one(DepthLegend))


async def test_ctrl_t_toggles_deep_and_fast_and_the_next_answer_uses_it(kb):
    app = LanternChat(load_settings(), session="m", reasoner=ScriptedReasoner(cited), kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        status = app.query_one(StatusBar)
        assert app.settings.mode == "deep" and "DEEP" in plain(status)
        await pilot.press("ctrl+t")
        assert app.settings.mode == "fast" and "FAST" in plain(status)
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        assert view.result.mode == "fast"
        await pilot.press("ctrl+t")
        assert app.settings.mode == "deep" and "DEEP" in plain(status)


async def test_a_rejected_tool_call_shows_its_validation_error_in_the_tool_log(kb):
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expr": 5}', "I cannot answer from the passages.")
    app = LanternChat(calculator_settings(), session="t", reasoner=reasoner, kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "How many layer applications does Ouro make?")
        await finished(pilot)
        [entry] = app.query_one(ToolLog).query(".tool-call")
        text = plain(entry)
        assert text.startswith('calculate {"expr": 5}') and "✗ rejected: invalid arguments for calculate: expr" in text
        assert "expression" in text and "→" not in text  # it never ran


async def test_a_valid_tool_call_shows_its_result_and_joins_the_evidence(kb):
    reasoner = ScriptedReasoner('CALL_TOOL calculate {"expression": "4 * 24"}', lambda ev: f"4 * 24 is 96 [{numbered_from(ev, 'returned')}].")
    app = LanternChat(calculator_settings(), session="t2", reasoner=reasoner, kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is 4 * 24?")
        view = await finished(pilot)
        text = plain(app.query_one(ToolLog).query_one(".tool-call"))
        number = len(view.passages)
        assert "✓ valid" in text and "96" in text.split("→")[1] and f"passage [{number}]" in text
        assert view.passages[-1].source == "tool:calculate" and view.result.claims[0].source == "tool:calculate"


async def test_a_session_from_the_command_line_reopens_with_its_earlier_turns_and_continues(kb):
    home = load_settings().home
    append_turns(home, "notes", exchange("Where is the knowledge base kept?", "In LanceDB on local disk [1]."))
    reasoner = GatedReasoner(cited)
    app = LanternChat(load_settings(), session="notes", reasoner=reasoner, kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")  # at once: possibly before the session is read
        await until(pilot, lambda: app.query("AnswerView.-earlier .answer"), "the earlier turns")
        [earlier] = app.query("AnswerView.-earlier")
        assert earlier.question == "Where is the knowledge base kept?" and earlier.markdown.source == "In LanceDB on local disk."
        await finished(pilot)
        assert list(app.query(AnswerView)) == [earlier, app.view]  # the earlier turn stays above the new question
        assert reasoner.questions[0].history == [Turn(role="user", text="Where is the knowledge base kept?"),
                                                 Turn(role="assistant", text="In LanceDB on local disk.")]
    assert len(load_turns(home, "notes")) == 4


async def test_switching_sessions_from_the_picker_shows_the_chosen_one(kb):
    home = load_settings().home
    append_turns(home, "older", exchange("What is Ouro?", "A looped language model."))
    app = LanternChat(load_settings(), kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        assert app.session.startswith("chat-") and not app.query("AnswerView")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SessionPicker), "the session picker")
        listed = app.screen.query_one("#session-list")
        assert [listed.get_option_at_index(i).id for i in range(listed.option_count)] == ["older"]
        listed.focus()
        await pilot.press("enter")
        await until(pilot, lambda: app.query("AnswerView.-earlier .answer"), "the chosen session's turns")
        assert app.session == "older" and "session older" in plain(app.query_one(StatusBar))
        await pilot.press("ctrl+n")  # a new chat: a new session, an empty conversation
        assert app.session.startswith("chat-") and not app.query("AnswerView")


def cli_error(home, *args) -> str:
    done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    return done.stderr.strip()


async def test_a_broken_model_folder_is_a_notification_with_the_cli_line_and_the_app_keeps_running(kb, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"\0" * 64)
    settings = load_settings({"model": str(broken)})
    expected = cli_error(settings.home, "--set", f"model={broken}", "ask", "When does Ouro stop looping?")
    app = LanternChat(settings, session="b", kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        assert expected.startswith("error: ") and expected in [n.message for n in app._notifications]
        assert plain(view.query_one(".state")) == expected and plain(app.query_one(StageBar)).split()[-1] == "failed"
        await pilot.press("ctrl+t")  # still running, still taking keys
        assert app.settings.mode == "fast"


async def test_an_empty_knowledge_base_is_a_notification_with_the_cli_line_and_questions_still_get_an_answer():
    settings = load_settings()
    expected = cli_error(settings.home, "search", "exit gate")
    app = LanternChat(settings, session="e")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: expected in [n.message for n in app._notifications], "the empty-KB notification")
        assert "KB empty" in plain(app.query_one(StatusBar))
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        assert view.result.status == "not_in_kb" and view.markdown.source == view.result.answer


async def test_a_tool_server_that_is_down_is_a_notice_and_the_answer_still_comes(kb):
    settings = load_settings({"mcp_servers": {"down": {"command": "/nonexistent/tool-server"}}})
    app = LanternChat(settings, session="d", reasoner=ScriptedReasoner(cited), kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        notes = [n.message for n in app._notifications]
        assert any(n.startswith("note: MCP server down is unavailable") for n in notes)
        assert view.result.status == "answered"


async def test_search_lists_passages_and_opens_one_at_its_lines(kb):
    app = LanternChat(load_settings(), session="q", kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "/search cumulative exit probability")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen.passages, "search results")
        first = app.screen.passages[0]
        assert "cumulative" in first.text
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SourceViewer), "the passage's source")
        area = app.screen.query_one(TextArea)
        assert area.selection.start == (first.start_line - 1, 0) and area.selection.end[0] == first.end_line - 1


async def test_copy_takes_the_answer_and_help_lists_every_key(kb):
    app = LanternChat(load_settings(), session="c", reasoner=ScriptedReasoner(cited), kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        view = await finished(pilot)
        await pilot.press("ctrl+y")
        assert app.clipboard == view.result.answer and "[" in app.clipboard
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shown = "\n".join(plain(s) for s in app.screen.query("Static"))
        for binding in app.BINDINGS:
            assert binding.tooltip in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_a_second_question_while_one_runs_is_refused_and_keys_still_work(kb):
    reasoner = GatedReasoner(cited, cited, hold_after=2)
    app = LanternChat(load_settings(), session="busy", reasoner=reasoner, kb=kb)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "When does Ouro stop looping?")
        await until(pilot, lambda: app.view.tokens, "the first tokens")
        await ask(pilot, "And again?")
        assert len(app.query("AnswerView")) == 1 and any("Esc cancels" in n.message for n in app._notifications)
        await pilot.press("ctrl+t")
        await pilot.press("f1")
        assert app.settings.mode == "fast" and isinstance(app.screen, HelpScreen)  # the UI never waited on the model
        await pilot.press("escape")
        reasoner.gate.set()
        await finished(pilot)


def test_chat_is_a_cli_command_with_the_ask_flags():
    done = subprocess.run([sys.executable, "-m", "lantern", "chat", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and all(flag in done.stdout for flag in ("--session", "--mode", "--model", "--backend"))


def test_a_bad_session_name_is_the_same_one_line_error_as_ask(tmp_path):
    chat = cli_error(tmp_path, "chat", "--session", "../x")
    ask_line = cli_error(tmp_path, "ask", "q?", "--session", "../x")
    assert chat == ask_line and len(chat.splitlines()) == 1


@pytest.mark.parametrize("fragments, expected", [
    (["see [1", "2] and [3, 4]."], "see \\[[12](cite:12)\\] and \\[[3](cite:3), [4](cite:4)\\]."),
    (["an [unrelated] bracket ["], "an [unrelated] bracket ["),
])
def test_citation_marks_become_links_even_when_split_across_tokens(fragments, expected):
    from lantern.tui.citations import Linker, passage_number

    linker = Linker()
    assert "".join(linker.feed(f) for f in fragments) + linker.flush() == expected
    assert passage_number("cite:12") == 12 and passage_number("https://x") is None


def test_every_kind_of_loop_event_has_its_message():
    from typing import get_args

    from lantern.events import Event
    from lantern.tui import messages

    kinds = {cls.model_fields["kind"].default for cls in get_args(get_args(Event)[0])}
    assert set(messages.BY_KIND) == kinds
