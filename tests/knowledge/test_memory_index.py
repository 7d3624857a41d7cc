"""The in-memory index (lantern.knowledge.memory_index, fulltext) against LanceDB, its reference:
the same rows and scores for both raw searches and the same fused results, on the shipped kb/ and
the test documents; kept current with ingests from another KnowledgeBase; LanceDB above the size
limit."""

from pathlib import Path

import pytest

from lantern.knowledge import KnowledgeBase
from lantern.knowledge.fulltext import FullTextIndex, terms
from lantern.knowledge.search import search
from lantern.knowledge.store import Store
from lantern.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
QUERIES = [
    "exit gate", "loop steps per token", "DEEP mode", "FAST mode", "knowledge base storage", "verifier claims", "citations",
    "hybrid search", "LanceDB", "MiniLM embeddings", "chunking headings", "session files", "MCP tools", "calculator",
    "Q-exit threshold", "KV cache", "bfloat16", "int8 quantization", "Ouro model sizes", "looped language model",
    "cumulative exit probability", "unsupported claims", "extractive mode", "offline", "config.toml", "LANTERN_HOME",
    "reciprocal rank fusion", "full-text index", "How does Ouro decide when to stop looping?",
    "Where does Lantern keep its knowledge base?", "does the model loop four times for every token", "co2 co2 emissions",
    "the of and was", "lantern's", "Ünïcödé café naïve", "C++ templates", "field:value", "temperature*", "AND OR NOT",
]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped kb/ and the test documents in one knowledge base."""
    from scripted import DOCS

    docs = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    kb = KnowledgeBase.open(load_settings({"home": str(tmp_path_factory.mktemp("home"))}))
    kb.ingest([ROOT / "kb", docs])
    return kb


def ranked(rows):
    return [(row["chunk_id"], row["score"]) for row in rows]


def assert_same_ranking(reference, fast, limit):
    """Equal scores (float32 rounding apart) and, score by score, the same rows. Rows whose scores
    are exactly equal may come in either order, and at the `limit` cut either of them may be kept:
    LanceDB orders ties by its heap, the memory index by table order."""
    assert [s for _, s in fast] == pytest.approx([s for _, s in reference], rel=1e-5, abs=1e-6)

    def tied(a, b):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a))

    for (_, score), (_, fast_score) in zip(reference, fast):
        at_cut = len(reference) == limit and tied(score, reference[-1][1])
        if not at_cut:
            assert {c for c, s in reference if tied(s, score)} == {c for c, s in fast if tied(s, fast_score)}


def test_terms_follow_lancedb_analyzer():
    # stemmed, then stop words dropped (so "does" -> "doe" stays), then folded to ASCII
    assert terms("Does the gate stop looping?") == ["doe", "gate", "stop", "loop"]
    assert terms("Café BJØRN naïve m²") == ["cafe", "bjorn", "naiv", "m2"]
    assert terms("snake_case CO2 x" + "y" * 40) == ["snake", "case", "co2"]  # words of 40+ bytes are not indexed
    assert terms("was were is") == []


TRICKY_WORDS = ["café", "cafe", "Bjørn", "bjorn", "Björn", "does", "doe", "running", "runs", "m²", "m2", "naïve", "naive",
                "½", "12", "académie", "academies", "straße", "strasse", "co₂", "under_score", "was", "Œuvre", "oeuvre",
                "x" * 39, "y" * 40, "résumé", "resume", "İstanbul", "istanbul", "ΣΟΦΙΑ", "σοφια", "µg", "μg", "άλφα", "αλφα",
                "йод", "иод", "ﬁle", "file"]


def test_the_analyzer_matches_lancedb_on_tricky_words(tmp_path):
    """One row per word in a real store; every word, as a query, finds the same rows in both."""
    from lantern.knowledge.memory_index import MemoryIndex, TableVersion

    store = Store(tmp_path / "kb")
    table = store.create_chunks_table("test-embedder", 4)
    table.add([{"chunk_id": f"w{i}", "source": "words.txt", "file_hash": "h", "heading": "", "text": word, "search_text": word,
                "start_line": i + 1, "end_line": i + 1, "vector": [1.0, float(i), 0.0, 1.0]} for i, word in enumerate(TRICKY_WORDS)])
    store.make_live(table, "test-embedder", 4)
    store.refresh_indexes()
    index = MemoryIndex.read(store.chunks(), TableVersion(table.name, table.version))
    for word in TRICKY_WORDS:
        reference = ranked(store.text_search(word, 50))
        assert_same_ranking(reference, ranked(index.text_search(word, 50)), 50)
    assert ranked(store.text_search("cafe", 50)) and not store.text_search("was", 50)  # the comparisons compared something


def test_bm25_counts_repeated_query_terms_and_prefers_short_rows():
    index = FullTextIndex(["gate gate gate open", "gate " + "filler " * 20, "nothing here"])
    rows, scores = index.scores("gate")
    assert rows.tolist() == [0, 1] and scores[0] > scores[1]
    assert index.search("gate gate", 5)[0][1] == pytest.approx(2 * index.search("gate", 5)[0][1])
    assert index.search("absent words", 5) == []


def test_full_text_search_equals_lancedb(shipped):
    index = _index(shipped)
    for query in QUERIES:
        reference = ranked(shipped.store.text_search(query, 50))
        assert_same_ranking(reference, ranked(index.text_search(query, 50)), 50)
    assert sum(bool(shipped.store.text_search(q, 50)) for q in QUERIES) > len(QUERIES) // 2  # rows were compared


def test_vector_search_equals_lancedb(shipped):
    index = _index(shipped)
    for query in QUERIES:
        vector = shipped.embed_query(query)
        reference = ranked(shipped.store.vector_search(list(map(float, vector)), 10))
        fast = ranked(index.vector_search(vector, 10))
        assert [c for c, _ in fast] == [c for c, _ in reference]
        assert [s for _, s in fast] == pytest.approx([s for _, s in reference], abs=1e-5)


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
def test_fused_top_k_equals_the_lancedb_path_up_to_the_order_of_tied_rows(shipped, mode):
    """Fused results are equal, except where a raw ranking holds rows of exactly equal score, which
    LanceDB and the memory index order differently (RRF then gives them other ranks). Proof that
    nothing else differs: with the memory index's rows put in LanceDB's order within each tie, the
    fused results are equal everywhere."""
    index = _index(shipped)
    in_lancedb_tie_order = LanceDBTieOrder(index, shipped.store)
    embed = lambda texts: [shipped.embed_query(t) for t in texts]  # noqa: E731
    equal = 0
    for query in QUERIES:
        for k in (1, 5, 10):
            notes_ref, notes_fast = [], []
            reference = search(shipped.store, embed, query, k, mode, notices=notes_ref)
            fast = search(shipped.store, embed, query, k, mode, notices=notes_fast, index=index)
            assert notes_fast == notes_ref
            equal += _same(fast, reference) and fast == [h.model_copy(update={"score": f.score}) for h, f in zip(reference, fast)]
            aligned = search(shipped.store, embed, query, k, mode, index=in_lancedb_tie_order)
            assert _same(aligned, reference), (query, k)
    # On these 26 chunks one BM25 tie ("knowledge base storage") changes 2 of 117 hybrid and 1 of 117
    # text results; vectors have no ties here.
    assert equal >= 0.95 * 3 * len(QUERIES)
    if mode == "vector":
        assert equal == 3 * len(QUERIES)


class LanceDBTieOrder:
    """The memory index's raw rankings in LanceDB's order: each row LanceDB returns must be found
    in the memory index with the same score (else the test fails), and is taken from there."""

    def __init__(self, index, store) -> None:
        self.index, self.store = index, store

    def vector_search(self, vector, limit):
        return self._in_order(self.index.vector_search(vector, self.index.rows), self.store.vector_search(list(map(float, vector)), limit))

    def text_search(self, query, limit):
        return self._in_order(self.index.text_search(query, self.index.rows), self.store.text_search(query, limit))

    @staticmethod
    def _in_order(everything, reference):
        by_id = {row["chunk_id"]: row for row in everything}
        for row in reference:
            assert by_id[row["chunk_id"]]["score"] == pytest.approx(row["score"], rel=1e-5, abs=1e-6)
        return [by_id[row["chunk_id"]] for row in reference]


def test_a_phrase_query_goes_to_lancedb_and_says_what_it_says(shipped):
    notes_ref, notes_fast = [], []
    embed = lambda texts: [shipped.embed_query(t) for t in texts]  # noqa: E731
    reference = search(shipped.store, embed, '"exit gate"', 3, notices=notes_ref)
    fast = search(shipped.store, embed, '"exit gate"', 3, notices=notes_fast, index=_index(shipped))
    assert notes_ref and notes_fast == notes_ref and fast == reference


def test_rows_carry_every_column_but_the_vector(tmp_path, docs):
    kb = KnowledgeBase.open(load_settings({"home": str(tmp_path / "home")}))
    kb.ingest([docs])
    kb.store.chunks().add_columns({"shelf": "'B-' || CAST(start_line AS STRING)"})  # a column added later
    kb.keep_in_memory()
    row = kb.memory_index.current().text_search("exit gate", 1)[0]
    assert row["shelf"] == f"B-{row['start_line']}" and "vector" not in row and "search_text" not in row
    stored = kb.store.text_search("exit gate", 1)[0]
    assert {name: row[name] for name in stored} == pytest.approx(stored)


def test_an_ingest_by_another_instance_is_seen_at_the_next_search(tmp_path, docs):
    settings = load_settings({"home": str(tmp_path / "home")})
    writer = KnowledgeBase.open(settings)
    writer.ingest([docs])
    reader = KnowledgeBase.open(settings)
    reader.keep_in_memory()
    first = reader.memory_index.current()
    assert not any("lighthouse" in h.text for h in reader.search("lighthouse keeper", 3))

    (docs / "light.md").write_text("# Lighthouse\n\nThe lighthouse keeper logs every ship that passes.\n")
    writer.ingest([docs])  # another KnowledgeBase, another LanceDB connection: as another process would
    assert reader.search("lighthouse keeper", 1)[0].source.endswith("light.md")
    assert reader.memory_index.current() is not first
    assert reader.search_from_memory("lighthouse keeper", 1)[0].source.endswith("light.md")


def test_where_the_versions_folders_cannot_be_listed_lancedb_is_asked_every_check_seconds(tmp_path, docs, monkeypatch):
    from lantern.knowledge.memory_index import LiveMemoryIndex

    settings = load_settings({"home": str(tmp_path / "home")})
    writer = KnowledgeBase.open(settings)
    writer.ingest([docs])
    reader = KnowledgeBase.open(settings)
    reader.keep_in_memory()
    reader.memory_index.check_seconds = 3600
    monkeypatch.setattr(LiveMemoryIndex, "_commit_marks", lambda self: (None, None))
    reader.search("lighthouse keeper", 1)
    (docs / "light.md").write_text("# Lighthouse\n\nThe lighthouse keeper logs every ship that passes.\n")
    writer.ingest([docs])
    assert not reader.search("lighthouse keeper", 1)[0].source.endswith("light.md")  # stale, as allowed
    reader.memory_index.check_seconds = 0  # the next search asks LanceDB
    assert reader.search("lighthouse keeper", 1)[0].source.endswith("light.md")


def test_a_table_over_the_limit_is_searched_in_lancedb(kb):
    chunks = kb.count()
    reference = kb.search("exit gate", 3)
    for limit, in_memory in ((chunks - 1, False), (chunks, True)):
        big = KnowledgeBase.open(kb.settings.model_copy(update={"memory_index_max_chunks": limit}))
        big.keep_in_memory()
        assert (big.memory_index.current() is not None) is in_memory
        assert _same(big.search("exit gate", 3), reference)
        assert (big.search_from_memory("exit gate", 3) is not None) is in_memory
    off = KnowledgeBase.open(kb.settings.model_copy(update={"memory_index_max_chunks": 0}))
    off.keep_in_memory()
    assert off.memory_index is None


def test_a_larger_table_is_read_in_the_background_while_lancedb_answers(kb):
    reference = kb.search("exit gate", 3)  # kb has no in-memory copy: LanceDB's answer
    kb.keep_in_memory()
    kb.memory_index.inline_rows = 0  # every table counts as large here
    assert kb.memory_index.current() is None and kb.memory_index.building is not None
    assert _same(kb.search("exit gate", 3), reference)
    kb.memory_index.building.join(timeout=60)
    index = kb.memory_index.current()
    assert index is not None and index.rows == kb.count()
    assert _same(kb.search("exit gate", 3), reference)


def test_search_from_memory_waits_for_nothing(kb):
    kb.keep_in_memory()
    assert kb.search_from_memory("exit gate", 2) is None  # the query's vector is not computed yet
    reference = kb.search("exit gate", 2)
    assert _same(kb.search_from_memory("exit gate", 2), reference)
    assert kb.search_from_memory("exit gate", 2, mode="text") is not None  # text needs no vector
    kb.search('"exit gate"', 2)  # its vector is cached now
    assert kb.search_from_memory('"exit gate"', 2) is None  # a phrase query needs LanceDB's full-text search
    assert kb.search_from_memory('"exit gate"', 2, mode="vector") is not None
    Store(kb.store.path).set_meta({"touched_by": "another process"})  # a commit through another connection
    assert kb.search_from_memory("exit gate", 2) is None  # asking LanceDB is not for an event loop
    assert _same(kb.search("exit gate", 2), reference)
    assert _same(kb.search_from_memory("exit gate", 2), reference)


def _index(kb):
    kb.keep_in_memory()
    return kb.memory_index.current()


def _same(hits, reference) -> bool:
    return [h.chunk_id for h in hits] == [h.chunk_id for h in reference] and all(
        abs(h.score - r.score) < 1e-6 for h, r in zip(hits, reference))


def test_concurrent_searches_each_get_their_own_results_while_commits_land(tmp_path, docs):
    """Eight threads search at once, as the MCP server's worker threads and event loop do, while
    another connection commits (each commit makes every search check LanceDB's version again)."""
    from concurrent.futures import ThreadPoolExecutor

    settings = load_settings({"home": str(tmp_path / "home")})
    KnowledgeBase.open(settings).ingest([docs])
    reader = KnowledgeBase.open(settings)
    reader.keep_in_memory()
    queries = QUERIES[:16]
    expected = {q: [(h.chunk_id, h.score) for h in reader.search(q, 3)] for q in queries}

    def one(query: str, at_once: bool):
        hits = reader.search_from_memory(query, 3) if at_once else None
        return query, [(h.chunk_id, h.score) for h in (hits if hits is not None else reader.search(query, 3))]

    other = Store(reader.store.path)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, q, i % 2 == 0) for i, q in enumerate(queries * 8)]
        for i in range(5):
            other.set_meta({"touched_by": f"another process, commit {i}"})
        results = [f.result() for f in futures]
    assert len(results) == 8 * len(queries)
    for query, got in results:
        assert got == expected[query], query
