"""Answers that answer the question: relevance per claim, abstention when the documents do not say,
what is missing named, and sources that disagree surfaced (extractive mode: no model weights)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lantern.knowledge import KnowledgeBase
from lantern.loop import answer
from lantern.settings import load_settings
from scripted import ROOT, ScriptedReasoner, numbered

LAKE = """# Lake Tahoe

Lake Tahoe is a large freshwater lake in the Sierra Nevada of the United States.
It straddles the state line between California and Nevada.

## Depth

The lake is 501 m deep at its deepest point, which makes it the second deepest lake in the country.
Its water is famous for its clarity, and tourism is the main industry along its shore.

## History

The first bridge over the Truckee River near the lake was built in 1901.
"""

SURVEY = """# Sonar survey

A sonar survey of Lake Tahoe measured the lake at 497 m deep at its deepest point.
The survey boat carried two sonar units and a crew of four.
"""


@pytest.fixture
def lake_kb(tmp_path):
    folder = tmp_path / "lake"
    folder.mkdir()
    (folder / "tahoe.md").write_text(LAKE)
    (folder / "survey.md").write_text(SURVEY)
    base = KnowledgeBase.open(load_settings())
    base.ingest([folder])
    return base


def test_the_answer_is_the_sentence_that_answers_and_conflicts_are_shown(lake_kb):
    result = answer("How deep is Lake Tahoe?", load_settings(), kb=lake_kb)
    assert result.status == "answered"
    assert all("deep" in c.claim for c in result.claims)
    assert all(c.relevance >= 0.4 for c in result.claims)
    assert not any("tourism" in c.claim or "California" in c.claim for c in result.claims)
    assert len(result.conflicts) == 1
    conflict = result.conflicts[0]
    assert conflict.about == "depth"
    assert {(v.value, v.source.rsplit("/", 1)[-1]) for v in conflict.values} == {("501 m", "tahoe.md"), ("497 m", "survey.md")}
    assert "The sources disagree on the depth" in result.answer and "501 m" in result.answer and "497 m" in result.answer


def test_a_figure_the_documents_never_give_is_not_answered(lake_kb):
    result = answer("How many fish species live in Lake Tahoe?", load_settings(), kb=lake_kb)
    assert result.status in ("not_in_kb", "partial")
    assert not any(c.relevance >= 0.4 and "species" in c.claim for c in result.claims)
    if result.status == "partial":
        assert result.missing and "number of fish" in result.missing
    else:
        assert result.claims == [] and result.related, "the closest sentences are listed as related, not as the answer"


def test_a_person_the_documents_never_name_is_not_answered(lake_kb):
    result = answer("Who discovered Lake Tahoe?", load_settings(), kb=lake_kb)
    assert result.status in ("not_in_kb", "partial")
    assert "Sierra Nevada" not in " ".join(c.claim for c in result.claims) or result.status == "partial"


def test_a_date_question_gets_the_sentence_with_the_year(lake_kb):
    result = answer("When was the first bridge over the Truckee River built?", load_settings(), kb=lake_kb)
    assert result.status == "answered"
    assert any("1901" in c.claim for c in result.claims)


def test_length_given_but_height_asked_is_partial_and_says_what_is_missing(tmp_path):
    folder = tmp_path / "bridge"
    folder.mkdir()
    (folder / "bridge.md").write_text("# The Old Bridge\n\nThe Old Bridge is 280 m long and crosses the river in five arches.\n"
                                      "It was opened to traffic in 1921.\n")
    base = KnowledgeBase.open(load_settings())
    base.ingest([folder])
    result = answer("How tall is the Old Bridge?", load_settings(), kb=base)
    assert result.status == "partial"
    assert result.missing == "The documents give the length for Old Bridge, not the height."
    assert result.missing in result.answer


def test_a_models_off_question_claim_is_listed_as_related(lake_kb):
    settings = load_settings()
    probe = answer("How deep is Lake Tahoe?", settings, kb=lake_kb, reasoner=ScriptedReasoner("placeholder", "placeholder"))
    deep = numbered(probe, "501 m deep")
    state = numbered(probe, "state line")
    reply = (f"Lake Tahoe straddles the state line between California and Nevada [{state}]. "
             f"The lake is 501 m deep at its deepest point [{deep}].")
    result = answer("How deep is Lake Tahoe?", settings, kb=lake_kb, reasoner=ScriptedReasoner(reply))
    assert [c.claim for c in result.claims] == [f"The lake is 501 m deep at its deepest point [{deep}]."] or \
        [c.claim.split(" [")[0] for c in result.claims] == ["The lake is 501 m deep at its deepest point."]
    assert len(result.related) == 1 and "state line" in result.related[0].claim
    assert "California" not in result.answer


def test_ask_json_carries_relevance_related_missing_and_conflicts(tmp_path):
    folder = tmp_path / "lake"
    folder.mkdir()
    (folder / "tahoe.md").write_text(LAKE)
    (folder / "survey.md").write_text(SURVEY)
    home = tmp_path / "home"
    run = lambda *args: subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), *args],  # noqa: E731
                                       capture_output=True, text=True, cwd=ROOT)
    assert run("ingest", str(folder)).returncode == 0
    done = run("ask", "How deep is Lake Tahoe?", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert all(0.0 <= c["relevance"] <= 1.0 for c in data["claims"]) and data["claims"]
    assert {"related", "missing", "conflicts"} <= set(data)
    assert data["conflicts"][0]["about"] == "depth"
    human = run("ask", "How deep is Lake Tahoe?")
    assert "relevance" in human.stdout and "Conflict: the sources disagree on the depth" in human.stdout


class _Answerability:
    """Stands in for the learned check's model in the wiring tests (the model has its own tests in
    tests/verify/test_answerable.py): a fixed probability, and the pairs it was shown."""

    def __init__(self, probability: float) -> None:
        self.probability, self.threshold, self.seen = probability, 0.5, []

    def scores(self, pairs):
        self.seen.extend(pairs)
        return [self.probability] * len(pairs)


@pytest.mark.parametrize("probability", [0.1, 0.9])
def test_the_learned_check_decides_whether_an_answer_stands(lake_kb, monkeypatch, probability):
    from lantern.loop import run

    check = _Answerability(probability)
    monkeypatch.setattr(run, "answerability_model", lambda: (check, ""))
    result = answer("How deep is Lake Tahoe?", load_settings(), kb=lake_kb)
    assert result.answerability == probability
    question, passage = check.seen[0]
    assert question == "How deep is Lake Tahoe?" and "deep" in passage and len(passage) <= 800
    if probability < check.threshold:
        assert result.status == "not_in_kb" and not result.claims and not result.conflicts
        assert any("501 m" in c.claim for c in result.related)
        assert "do not answer" in result.answer
    else:
        assert result.status == "answered" and any("501 m" in c.claim for c in result.claims)


def test_the_learned_check_can_be_off_or_unavailable(lake_kb, monkeypatch):
    from lantern.loop import run

    monkeypatch.setattr(run, "answerability_model", lambda: (None, "The answerability check is off: cannot read it."))
    result = answer("How deep is Lake Tahoe?", load_settings(), kb=lake_kb)
    assert result.status == "answered" and result.answerability is None
    assert "The answerability check is off: cannot read it." in result.notices
    monkeypatch.setenv("LANTERN_ANSWERABILITY_CHECK", "false")
    monkeypatch.setattr(run, "answerability_model", lambda: pytest.fail("the check is off"))
    assert answer("How deep is Lake Tahoe?", load_settings(), kb=lake_kb).answerability is None
