"""Remember: a Question -> the evidence passages worth showing the model.

Retrieval ranks by fused scores that are only comparable within one list, so relevance to the
question is measured separately (cosine between the question's embedding and the passage vectors
stored at ingestion, so no passage is embedded again); passages under
`min_relevance` are not evidence. No evidence left means the loop answers "not in the knowledge
base" without calling the model. This module knows nothing about models or claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lantern.loop.observe import retrieval_query
from lantern.records import Evidence, Question


@dataclass
class Recall:
    query: str
    evidence: list[Evidence] = field(default_factory=list)
    relevance: list[float] = field(default_factory=list)
    """Cosine similarity of each kept passage to the query, same order as evidence."""
    below_threshold: int = 0
    notices: list[str] = field(default_factory=list)
    """What the user should know about this search (e.g. the full-text half failed)."""


def remember(question: Question, kb, k: int, min_relevance: float) -> Recall:
    query = retrieval_query(question)
    if kb.count() == 0:
        return Recall(query)
    notices: list[str] = []
    hits = kb.search(query, k, notices=notices)
    if not hits:
        return Recall(query, notices=notices)
    sims = kb.relevance(query, hits)
    keep = [i for i in range(len(hits)) if sims[i] >= min_relevance]
    return Recall(query, [hits[i] for i in keep], [float(sims[i]) for i in keep], len(hits) - len(keep), notices)
