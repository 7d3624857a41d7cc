"""ReaderStream sorts streamed text into reader text, thinking and tool requests, piece by piece."""

import pytest

from lantern.backends.text_stream import ReaderStream


def sort(chunks, **options):
    reader = ReaderStream(**options)
    pieces = []
    for step, chunk in enumerate(chunks, 1):
        pieces += reader.feed(chunk, step)
    pieces += reader.finish()
    return pieces, reader.result()


def channel(pieces, name):
    return "".join(p.text for p in pieces if p.channel == name)


def test_thinking_then_answer_with_exit_steps_kept_per_token():
    pieces, (answer, thinking, calls, rejected) = sort(["<th", "ink>", "plan", " it</th", "ink>\n\nThe", " answer [1]."])
    assert channel(pieces, "thinking") == "plan it" and thinking == "plan it"
    assert channel(pieces, "answer") == "The answer [1]." == answer
    assert [(p.text, p.exit_step) for p in pieces if p.channel == "answer"] == [("The", 5), (" answer [1].", 6)]
    assert calls == [] and rejected == []


def test_a_template_that_opens_think_starts_in_thinking():
    pieces, (answer, thinking, _, _) = sort(["weigh it ", "</think>", "Yes [2]."], thinking_first=True)
    assert thinking == "weigh it" and answer == "Yes [2]."


def test_an_unclosed_think_is_all_thinking():
    pieces, (answer, thinking, _, _) = sort(["<think>still going"])
    assert answer == "" and thinking == "still going"


@pytest.mark.parametrize("chunks", [
    ["Let me check.\nCALL", "_TOOL calculate {\"expression\": ", "\"2 + 2\"}\nDone."],
    ["Let me check.\n`CALL_TOOL calculate {\"expression\": \"2 + 2\"}`\nDone."],
    ["Let me check.\n<tool_call>{\"name\": \"calculate\", ", "\"arguments\": {\"expression\": \"2 + 2\"}}</tool_call>\nDone."],
])
def test_tool_requests_never_reach_the_reader(chunks):
    pieces, (answer, _, calls, rejected) = sort(chunks)
    shown = channel(pieces, "answer")
    assert "CALL" not in shown and "tool_call" not in shown and "expression" not in shown and "`" not in shown
    assert shown.split() == ["Let", "me", "check.", "Done."]
    assert [(c.name, c.arguments) for c in calls] == [("calculate", {"expression": "2 + 2"})] and rejected == []


def test_a_malformed_request_is_rejected_with_the_reason():
    _, (answer, _, calls, rejected) = sort(["CALL_TOOL calculate {expression: 2 +"])
    assert calls == [] and len(rejected) == 1 and "not a JSON object" in rejected[0].error and answer == ""


def test_text_that_only_looks_like_a_marker_start_is_released():
    pieces, (answer, _, calls, _) = sort(["a < b and CALL", " me maybe"])
    assert answer == "a < b and CALL me maybe" and channel(pieces, "answer") == answer and calls == []
