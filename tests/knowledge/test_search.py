"""Search pieces that need no database: fusion and neighbour boosting."""

import numpy as np
import pytest

from lantern.knowledge.search import neighbour_boost, rrf_fuse


def row(chunk_id, source, start, end, score):
    return {"chunk_id": chunk_id, "source": source, "start_line": start, "end_line": end, "score": score}


def test_neighbour_boost_lends_score_only_to_nearby_spans_of_the_same_file():
    rows = [
        row("strong", "a.md", 10, 12, 1.0),
        row("after", "a.md", 14, 15, 0.1),  # the next paragraph, one blank line later
        row("overlap", "a.md", 5, 10, 0.1),  # overlaps the strong chunk's first line
        row("far", "a.md", 18, 21, 0.3),  # same file, two lines between it and "after"
        row("other", "b.md", 13, 15, 0.3),  # adjacent lines, other file
    ]
    boosted = {r["chunk_id"]: r["score"] for r in neighbour_boost(rows, weight=0.5)}
    assert boosted["after"] == pytest.approx(0.1 + 0.5 * 1.0)
    assert boosted["overlap"] == pytest.approx(0.1 + 0.5 * 1.0)
    assert boosted["strong"] == pytest.approx(1.0 + 0.5 * 0.1)
    assert boosted["far"] == pytest.approx(0.3) and boosted["other"] == pytest.approx(0.3)
    ordered = [r["chunk_id"] for r in neighbour_boost(rows, weight=0.5)]
    assert ordered[0] == "strong" and set(ordered[1:3]) == {"after", "overlap"}


def test_neighbour_boost_matches_a_pairwise_reference():
    rng = np.random.default_rng(0)
    rows = [row(f"c{i}", f"s{rng.integers(3)}", int(start), int(start + rng.integers(0, 6)), float(rng.random()))
            for i, start in enumerate(rng.integers(1, 60, size=40))]
    expected = {}
    for r in rows:
        touching = [o["score"] for o in rows if o is not r and o["source"] == r["source"]
                    and o["start_line"] <= r["end_line"] + 2 and r["start_line"] <= o["end_line"] + 2]
        expected[r["chunk_id"]] = r["score"] + 0.4 * max(touching, default=0.0)
    got = neighbour_boost(rows, weight=0.4)
    assert {r["chunk_id"]: r["score"] for r in got} == pytest.approx(expected)
    assert [r["score"] for r in got] == sorted((r["score"] for r in got), reverse=True)


def test_rrf_fuse_rewards_agreement():
    a = [row("x", "f", 1, 1, 0), row("y", "f", 3, 3, 0)]
    b = [row("y", "f", 3, 3, 0), row("z", "f", 5, 5, 0)]
    assert [r["chunk_id"] for r in rrf_fuse([a, b])][0] == "y"


def test_consecutive_chunks_of_a_real_file_are_neighbours_and_far_ones_are_not():
    """The gap rule against what the chunker really produces: paragraphs one blank line apart."""
    from lantern.knowledge.chunking import chunk_text

    paragraphs = [f"Paragraph {i} says something about topic {i} in a sentence long enough to stand alone." for i in range(8)]
    text = "# Title\n\n" + "\n\n".join(paragraphs[:4]) + "\n\n## Part two\n\n" + "\n\n".join(paragraphs[4:]) + "\n"
    chunks = chunk_text(text, "markdown", 120, 0)
    assert len(chunks) >= 6
    for first, second in zip(chunks, chunks[1:]):
        rows = [row("a", "f.md", first.start_line, first.end_line, 1.0), row("b", "f.md", second.start_line, second.end_line, 0.0)]
        assert {r["chunk_id"]: r["score"] for r in neighbour_boost(rows, weight=0.5)}["b"] == pytest.approx(0.5)
    rows = [row("a", "f.md", chunks[0].start_line, chunks[0].end_line, 1.0), row("c", "f.md", chunks[2].start_line, chunks[2].end_line, 0.0)]
    assert {r["chunk_id"]: r["score"] for r in neighbour_boost(rows, weight=0.5)}["c"] == 0.0


def test_each_rankings_first_row_is_kept_in_the_top_k():
    from lantern.knowledge.search import keep_each_lists_best

    vector = [row("v1", "f", 1, 1, 0)] + [row(f"b{i}", "f", 10 * i, 10 * i, 0) for i in range(5)]
    text = [row("t1", "f", 2, 2, 0)] + [row(f"b{i}", "f", 10 * i, 10 * i, 0) for i in range(5)]
    fused = rrf_fuse([vector, text])  # b0..b4 are in both lists and beat each list's own first row
    assert [r["chunk_id"] for r in fused[:3]] == ["b0", "b1", "b2"]
    kept = [r["chunk_id"] for r in keep_each_lists_best(fused, [vector, text], 3)]
    assert kept[:3] == ["b0", "v1", "t1"] and sorted(kept) == sorted(r["chunk_id"] for r in fused)
    assert keep_each_lists_best(fused, [vector, text], 10) == fused  # already in: nothing moves
