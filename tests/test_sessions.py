"""Named sessions: turns persisted between `lantern ask --session` calls, never rewritten."""

import json

import pytest

from lantern.errors import LanternError
from lantern.records import Turn
from lantern.sessions import append_turns, exchange, load_turns, session_file


def test_turns_round_trip_and_citation_marks_are_left_out(tmp_path):
    assert load_turns(tmp_path, "notes") == []
    append_turns(tmp_path, "notes", exchange("What is DEEP mode?", "Each token picks its depth [1]. It stops early [1, 2]."))
    append_turns(tmp_path, "notes", exchange("and FAST?", "All four steps [3]."))
    turns = load_turns(tmp_path, "notes")
    assert [t.role for t in turns] == ["user", "assistant"] * 2
    assert turns[1].text == "Each token picks its depth. It stops early." and turns[3].text == "All four steps."


def test_a_bad_line_is_reported_with_its_number_and_left_alone(tmp_path):
    append_turns(tmp_path, "s", exchange("q1", "a1"))
    path = session_file(tmp_path, "s")
    path.write_text(path.read_text() + "not json\n" + json.dumps({"role": "user", "text": "q2"}) + "\n")
    before = path.read_bytes()
    with pytest.raises(LanternError, match=r"line 3 is not a turn"):
        load_turns(tmp_path, "s")
    assert path.read_bytes() == before


def test_an_unfinished_last_line_from_a_killed_write_is_passed_over(tmp_path):
    append_turns(tmp_path, "s", exchange("q1", "a1"))
    path = session_file(tmp_path, "s")
    path.write_text(path.read_text() + '{"role": "user", "te')
    assert [t.text for t in load_turns(tmp_path, "s")] == ["q1", "a1"]
    append_turns(tmp_path, "s", exchange("q2", "a2"))  # cuts the unfinished line first
    assert [t.text for t in load_turns(tmp_path, "s")] == ["q1", "a1", "q2", "a2"]


def test_a_hand_edited_last_turn_without_newline_is_kept(tmp_path):
    path = session_file(tmp_path, "s")
    path.parent.mkdir(parents=True)
    path.write_text('{"role": "user", "text": "typed by hand"}')
    append_turns(tmp_path, "s", exchange("q2", "a2"))
    assert [t.text for t in load_turns(tmp_path, "s")] == ["typed by hand", "q2", "a2"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 65])
def test_a_session_name_cannot_leave_the_sessions_folder(tmp_path, name):
    with pytest.raises(LanternError, match="not allowed"):
        session_file(tmp_path, name)


def test_lantern_ask_session_keeps_the_conversation(tmp_path, isolated_home, capsys):
    from lantern.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nCats sleep for most of the day.\n\nMost cats are grey or ginger.\n")
    (docs / "cars.md").write_text("# Cars\n\nCars need fuel to run.\n")

    def run(*args):
        try:
            main(list(args))
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        return capsys.readouterr()

    run("ingest", str(docs))
    run("ask", "--session", "pets", "How long do cats sleep?", "--json")
    out = run("ask", "--session", "pets", "and what colour are they?", "--json").out
    assert any(c["source"].endswith("cats.md") for c in json.loads(out)["claims"])
    turns = load_turns(isolated_home, "pets")
    assert [t.text for t in turns if t.role == "user"] == ["How long do cats sleep?", "and what colour are they?"]
    assert all("[" not in t.text for t in turns)
