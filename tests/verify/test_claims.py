"""Claim splitting and lenient citation parsing."""

import pytest

from lantern.verify.claims import parse_citations, sentence_spans, split_claims, split_sentences


@pytest.mark.parametrize(
    "text, numbers",
    [("a [1]", [1]), ("a [1, 3]", [1, 3]), ("a [2-4]", [2, 3, 4]), ("a [^2]", [2]), ("a [Source 2]", [2]),
     ("a 【3】", [3]), ("a [1][2]", [1, 2]), ("a [passage 1 and 2]", [1, 2]), ("no citation", [])],
)
def test_citations_are_parsed_leniently(text, numbers):
    assert parse_citations(text) == numbers


def test_claims_keep_only_citations_to_retrieved_passages():
    claims = split_claims("Ouro loops 4 times [1]. It stops early.[9] The gate is e.g. a sigmoid [2, 3].", n_passages=2)
    assert [c.text for c in claims] == ["Ouro loops 4 times.", "It stops early.", "The gate is e.g. a sigmoid."]
    assert [c.citations for c in claims] == [[1], [], [2]]
    assert claims[1].invalid_citations == [9] and claims[2].invalid_citations == [3]


def test_citation_after_the_full_stop_belongs_to_that_sentence():
    claims = split_claims("Lantern uses LanceDB. [2] Dr. Smith measured 2.5 tok/s [1].", n_passages=2)
    assert [(c.text, c.citations) for c in claims] == [("Lantern uses LanceDB.", [2]), ("Dr. Smith measured 2.5 tok/s.", [1])]


def test_sentence_spans_are_exact_offsets():
    text = "# Title\n\nFirst one. Second one!\n- item a\n- item b"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == split_sentences(text) == ["# Title", "First one.", "Second one!", "- item a", "- item b"]
