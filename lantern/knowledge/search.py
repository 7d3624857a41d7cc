"""Query -> ranked evidence: vector search, full-text search, reciprocal rank fusion, rerank.

Hybrid mode runs both raw searches of `store.py` with a deeper candidate pool than asked for and
fuses the two rankings with weighted reciprocal rank fusion (RRF: score = sum of w / (c + rank)),
then lends each candidate part of its best neighbouring candidate's score (`neighbour_boost`):
the passage next to a relevant one often carries the rest of the answer ("She was born there."
after the sentence that names her), and a passage alone cannot say so.
A reranker is any object with `rerank(query, hits) -> hits`; none is used by default, and a
cross-encoder can be plugged in through `CrossEncoderReranker` where one is installed.
A process that keeps a `memory_index.MemoryIndex` of the table passes it in: the two raw searches
then come from memory (same rows and scores; see `fulltext.py` for how ties may be ordered
differently), everything after them is the same code.

This module knows nothing about files or ingestion.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from lantern.knowledge.injection import from_json
from lantern.knowledge.memory_index import MemoryIndex, handles_text_query
from lantern.knowledge.store import TextSearchFailed
from lantern.records import Evidence

SearchMode = Literal["hybrid", "vector", "text"]

RRF_C = 10
"""The RRF constant: larger flattens the difference between ranks. 10 was best on the Climate-FEVER dev half (recall@5 0.632 vs 0.619 at the customary 60)."""
NEIGHBOUR_WEIGHT = 0.4
"""Share of the best neighbouring candidate's score added to a candidate's own. Chosen on the WiCE
dev half with strictly touching spans (gold-in-top-10 0.796 without, 0.803 at 0.4; 0.2 to 0.5 all
help, 1.0 hurts); with the one-line gap below the dev half is flat from 0.2 to 0.4 (0.797 to 0.799)."""
NEIGHBOUR_GAP_LINES = 1
"""Lines that may separate two neighbouring chunks: the chunker cuts at paragraph breaks, so
consecutive chunks of a file are usually one blank line apart, and strictly touching spans would
miss them. (On WiCE, one sentence per line, it makes sentences up to two apart neighbours.)"""
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lantern-fts")
CANDIDATES_PER_RESULT = 5
MIN_CANDIDATES = 50


class Reranker(Protocol):
    def rerank(self, query: str, hits: list[Evidence]) -> list[Evidence]: ...


class CrossEncoderReranker:
    """Rerank with a sentence-transformers CrossEncoder (id or local path, loaded offline)."""

    def __init__(self, model: str) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(model)

    def rerank(self, query: str, hits: list[Evidence]) -> list[Evidence]:
        if not hits:
            return hits
        scores = self.model.predict([(query, hit.text) for hit in hits])
        order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
        return [hits[i].model_copy(update={"score": float(scores[i])}) for i in order]


def rrf_fuse(rankings: list[list[dict[str, Any]]], weights: list[float] | None = None, c: int = RRF_C) -> list[dict[str, Any]]:
    """Weighted reciprocal rank fusion of ranked row lists (rows keyed by chunk_id)."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[str, dict[str, Any]] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, row in enumerate(ranking):
            entry = fused.setdefault(row["chunk_id"], dict(row, score=0.0))
            entry["score"] += weight / (c + rank + 1)
    return sorted(fused.values(), key=lambda row: -row["score"])


def neighbour_boost(rows: list[dict[str, Any]], weight: float = NEIGHBOUR_WEIGHT) -> list[dict[str, Any]]:
    """Add `weight` x the best score among each row's neighbours, re-sorted. Neighbours are rows of
    the same source whose line spans overlap (chunks may, by design) or lie at most
    `NEIGHBOUR_GAP_LINES` apart (the blank line between paragraphs); rows that did not make the
    candidate pool count as zero."""
    if weight == 0 or len(rows) < 2:
        return rows
    best_neighbour = [0.0] * len(rows)
    by_source: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_source.setdefault(row["source"], []).append(i)
    for members in by_source.values():
        members.sort(key=lambda i: (int(rows[i]["start_line"]), int(rows[i]["end_line"])))
        for position, a in enumerate(members):
            for b in members[position + 1 :]:  # sorted by start: stop at the first that starts past a's end
                if int(rows[b]["start_line"]) > int(rows[a]["end_line"]) + 1 + NEIGHBOUR_GAP_LINES:
                    break
                best_neighbour[a] = max(best_neighbour[a], rows[b]["score"])
                best_neighbour[b] = max(best_neighbour[b], rows[a]["score"])
    boosted = [dict(row, score=row["score"] + weight * extra) for row, extra in zip(rows, best_neighbour)]
    return sorted(boosted, key=lambda row: -row["score"])


def keep_each_lists_best(rows: list[dict[str, Any]], rankings: list[list[dict[str, Any]]], k: int) -> list[dict[str, Any]]:
    """Make each raw ranking's first row part of the top `k`, taking the last places: a passage the
    vector search ranks first but full text misses (same meaning, other words) scores only 1/(c+1)
    in the fusion and can lose to passages both rank moderately (PubMedQA test recall@5 0.992 ->
    0.994, Climate-FEVER and WiCE unchanged). Scores stay as fused, so a kept row may show a lower
    score than the one above it."""
    firsts = list(dict.fromkeys(ranking[0]["chunk_id"] for ranking in rankings if ranking))
    present = {row["chunk_id"] for row in rows}
    missing = [cid for cid in firsts if cid in present and cid not in {row["chunk_id"] for row in rows[:k]}]
    if not missing or k <= 0:
        return rows
    head = rows[: max(k - len(missing), 0)]
    moved = [row for cid in missing for row in rows if row["chunk_id"] == cid]
    taken = {row["chunk_id"] for row in head + moved}
    return head + moved + [row for row in rows if row["chunk_id"] not in taken]


def to_evidence(row: dict[str, Any]) -> Evidence:
    return Evidence(
        chunk_id=row["chunk_id"],
        source=row["source"],
        text=row["text"],
        start_line=int(row["start_line"]),
        end_line=int(row["end_line"]),
        heading=row.get("heading") or "",
        score=float(row["score"]),
        flags=from_json(row.get("flags")),
    )


def search(
    store,
    embed,
    query: str,
    k: int,
    mode: SearchMode = "hybrid",
    reranker: Reranker | None = None,
    where: str | None = None,
    vector_weight: float = 1.0,
    text_weight: float = 1.0,
    notices: list[str] | None = None,
    index: MemoryIndex | None = None,
) -> list[Evidence]:
    """The top `k` chunks for `query`. `embed(list[str]) -> list[vector]` embeds the query. When the
    full-text search fails for this query, a line saying so is appended to `notices` (hybrid search
    then ranks by vectors alone, and the user should know). `index`, a current in-memory copy of the
    store's chunks table, answers the raw searches unless a SQL `where` filter is given."""
    pool = max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * k) if (mode == "hybrid" or reranker) else k
    in_memory = index is not None and where is None

    def vector_rows() -> list[dict[str, Any]]:
        vector = embed([query])[0]
        return index.vector_search(vector, pool) if in_memory else store.vector_search(list(map(float, vector)), pool, where)

    def text_rows(future=None) -> list[dict[str, Any]]:
        try:
            if future is not None:
                return future.result()
            if in_memory and handles_text_query(query):
                return index.text_search(query, pool)
            return store.text_search(query, pool, where)
        except TextSearchFailed as exc:
            alone = "; these results come from the vector search alone" if mode == "hybrid" else ""
            if notices is not None:
                notices.append(f"full-text search failed for this query ({exc}){alone}.")
            return []

    if mode == "text":
        rows = text_rows()
    elif mode == "vector":
        rows = vector_rows()
    else:
        # LanceDB's full-text search runs in its native code while this thread embeds the query;
        # the in-memory one takes microseconds and runs here.
        pending = None if in_memory and handles_text_query(query) else _POOL.submit(store.text_search, query, pool, where)
        rankings = [vector_rows(), text_rows(pending)]
        rows = neighbour_boost(rrf_fuse(rankings, [vector_weight, text_weight]))
        if reranker is None:
            rows = keep_each_lists_best(rows, rankings, k)
    hits = [to_evidence(row) for row in (rows if reranker is not None else rows[:k])]
    if reranker is not None:
        hits = reranker.rerank(query, hits)
    return hits[:k]
