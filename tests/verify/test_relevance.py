"""What a question asks for, how much of it a claim answers, what is missing, and conflicts between sources."""

from __future__ import annotations

import pytest

from lantern.records import Claim, Verdict
from lantern.verify import relevance as rel


@pytest.mark.parametrize("question, answer_type, attribute", [
    ("How deep is Lake Baikal?", "quantity", "depth"),
    ("How tall is the Golden Gate Bridge?", "quantity", "height"),
    ("How many people live in Paris?", "quantity", "number of people"),
    ("What percentage of voters turned out?", "quantity", "percentage"),
    ("When was the bridge opened?", "date", "date"),
    ("When does the model stop looping?", "any", ""),
    ("In what year did the war end?", "date", "year"),
    ("Who founded the company?", "person", "person"),
    ("Where is the Eiffel Tower?", "place", "place"),
    ("In which city was she born?", "place", "city"),
    ("What does the exit gate decide?", "any", ""),
])
def test_the_expected_answer_type_comes_from_the_question(question, answer_type, attribute):
    wanted = rel.asked(question)
    assert (wanted.answer_type, wanted.attribute) == (answer_type, attribute)


def test_focus_drops_question_words_and_keeps_the_subject():
    wanted = rel.asked("How many layers does Ouro-1.4B have?")
    assert "layer" in wanted.focus and "ouro" in wanted.focus
    assert not {"how", "many", "what"} & set(wanted.focus)
    assert wanted.subject == "Ouro-1.4B"


def test_a_value_of_the_asked_type_makes_a_sentence_relevant():
    wanted = rel.asked("How tall is the Golden Gate Bridge?")
    answer = rel.relevance(wanted, "The Golden Gate Bridge is 227 m tall.")
    other_dimension = rel.relevance(wanted, "The Golden Gate Bridge is 2,737 m long.")
    no_value = rel.relevance(wanted, "The Golden Gate Bridge is painted International Orange.")
    assert answer == pytest.approx(1.0)
    # about the bridge but without its height: at most half relevant (part of an answer at best)
    assert other_dimension == no_value == pytest.approx(0.5)
    assert rel.relevance(wanted, "Paris has many bridges.") < rel.ANSWERS
    assert rel.relevance(rel.asked("When did it open?"), "It opened in 1937.") > rel.relevance(rel.asked("When did it open?"), "It opened to traffic.")


def test_a_number_the_question_already_holds_is_not_an_answer():
    wanted = rel.asked("How many employees did the company have in 1990?")
    assert not rel.has_value(wanted, "In 1990 the company moved to Berlin.")
    assert rel.has_value(wanted, "In 1990 the company had 4,200 employees.")


def test_the_heading_counts_toward_the_focus():
    wanted = rel.asked("When does the model stop looping?")
    plain = rel.relevance(wanted, "It stops at the first step whose cumulative probability exceeds 0.5.")
    headed = rel.relevance(wanted, "It stops at the first step whose cumulative probability exceeds 0.5.", heading="When the model stops looping")
    assert headed > plain


def claim(text: str, source: str = "a.md", line: int = 1, relevance: float | None = None, question: str = "") -> Claim:
    value = rel.relevance(rel.asked(question), text) if relevance is None else relevance
    return Claim(claim=text, evidence=text, source=source, start_line=line, end_line=line, confidence=1.0,
                 verdict=Verdict.supported, relevance=value)


def test_judge_answered_partial_and_not_in_kb():
    question = "How tall is the Golden Gate Bridge?"
    wanted = rel.asked(question)
    answered = rel.judge(wanted, [claim("The Golden Gate Bridge is 227 m tall.", question=question)])
    assert answered.status == "answered" and not answered.missing

    length_only = claim("The Golden Gate Bridge is 2,737 m long.", question=question)
    partial = rel.judge(wanted, [length_only.model_copy(update={"relevance": 0.6})])
    assert partial.status == "partial"
    assert partial.missing == "The documents give the length for Golden Gate Bridge, not the height."

    off = rel.judge(wanted, [claim("The city has many hills.", question=question)])
    assert off.status == "not_in_kb" and [c.claim for c in off.related] == ["The city has many hills."]
    assert rel.judge(wanted, []).status == "not_in_kb"


def test_off_question_claims_are_related_not_the_answer():
    question = "How deep is Lake Baikal?"
    wanted = rel.asked(question)
    judged = rel.judge(wanted, [claim("Lake Baikal is 1,642 m deep.", question=question),
                                claim("Baikal seals live only in this lake.", question=question)])
    assert [c.claim for c in judged.answering] == ["Lake Baikal is 1,642 m deep."]
    assert [c.claim for c in judged.related] == ["Baikal seals live only in this lake."]


def test_conflicting_values_from_two_sources_are_found():
    question = "How deep is Lake Baikal?"
    wanted = rel.asked(question)
    found = rel.conflicts(wanted, [claim("Lake Baikal is 1,642 m deep.", "a.md", 3, question=question),
                                   claim("Lake Baikal is 1,700 m deep.", "b.md", 5, question=question)])
    assert len(found) == 1
    assert found[0].about == "depth"
    assert {(v.value, v.source, v.start_line) for v in found[0].values} == {("1642 m", "a.md", 3), ("1700 m", "b.md", 5)}


def test_agreeing_sources_and_one_source_are_no_conflict():
    question = "How deep is Lake Baikal?"
    wanted = rel.asked(question)
    same = [claim("Lake Baikal is 1,642 m deep.", "a.md", question=question), claim("Lake Baikal is 1642 m deep.", "b.md", question=question)]
    assert rel.conflicts(wanted, same) == []
    one_source = [claim("Lake Baikal is 1,642 m deep.", "a.md", 1, question=question),
                  claim("Lake Baikal is 1,700 m deep at its northern end.", "a.md", 4, question=question)]
    assert rel.conflicts(wanted, one_source) == []
    different_things = [claim("Lake Baikal is 1,642 m deep.", "a.md", question=question),
                        claim("Lake Baikal is 636 km long.", "b.md", question=question)]
    assert rel.conflicts(wanted, different_things) == []


def test_conflicting_years():
    question = "When was the bridge opened?"
    wanted = rel.asked(question)
    found = rel.conflicts(wanted, [claim("The bridge was opened in 1937.", "a.md", question=question),
                                   claim("The bridge was opened in 1938.", "b.md", question=question)])
    assert [sorted(v.value for v in c.values) for c in found] == [["1937", "1938"]]


def test_what_is_missing_names_the_question_words_the_passages_lack():
    wanted = rel.asked("What fish species did the survey of Lake Tahoe count?")
    assert rel.missing_sentence(wanted, "The survey of Lake Tahoe measured its depth.") == \
        'The passages found do not mention "fish", "species" or "count" from the question.'
    assert rel.missing_sentence(rel.asked("When was the bridge opened?"), "The bridge is long.") == \
        "The documents mention bridge opened but do not give the date asked for."
