"""The Remember stage's knowledge base: ingest files, search them, quote them.

`KnowledgeBase.open(settings)` binds the LanceDB store under LANTERN_HOME to the configured
embedder; `retrieve(query, k)` is what the answer loop calls. Submodules: readers (file -> text),
chunking (text -> spans), store (LanceDB tables), ingest (incremental, crash-safe writes),
search (vector, full text, RRF fusion, rerank), injection (text addressed to AI systems, flagged
per chunk at ingestion), migrate (an older KB's chunks brought to the current schema at open),
memory_index and fulltext (an in-memory copy of the chunks table that a process staying up
searches instead of LanceDB, with BM25 as LanceDB's full-text index scores it).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from lantern.errors import KnowledgeBaseError
from lantern.knowledge import migrate
from lantern.knowledge.injection import detector_version
from lantern.knowledge.ingest import IngestProgress, IngestReport, ingest
from lantern.knowledge.memory_index import LiveMemoryIndex, handles_text_query
from lantern.knowledge.search import Reranker, SearchMode, search
from lantern.knowledge.store import StoredFile, Store
from lantern.records import Evidence, Flag
from lantern.settings import Settings, load_settings

__all__ = ["KnowledgeBase", "retrieve", "IngestReport", "StoredFile"]

log = logging.getLogger(__name__)


class KnowledgeBase:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.reranker: Reranker | None = None
        self._embedder = None
        self._query_vectors: dict = {}
        self.queries_without_torch = False
        """Set by a process that only searches (`lantern search`): queries then embed through numpy,
        and torch, 1.3 s to import, is never loaded. Ingestion still needs torch."""
        self.memory_index: LiveMemoryIndex | None = None
        """Set by `keep_in_memory()` in a process that stays up: searches then read an in-memory copy."""

    @classmethod
    def open(cls, settings: Settings | None = None, say: Callable[[str], None] | None = None) -> "KnowledgeBase":
        """The knowledge base of `settings`. Chunks stored without injection flags (a KB from before
        they existed) get them now, once, with one line to `say` (default: stderr), unless another
        process is writing, in which case that writer's next ingest does it."""
        settings = settings or load_settings()
        kb = cls(settings, Store(settings.kb_path, settings.kb_table))
        if settings.flag_injections and migrate.unchecked(kb.store, detector_version()):
            with kb.writing(say, wait=False) as holding:
                if holding:
                    kb.flag_stored_chunks(say)
        return kb

    # --- embeddings ----------------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from lantern.embedding import load_embedder

            self._embedder = load_embedder(self.settings.embed_model)
        return self._embedder

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def embed_query(self, query: str):
        """The query's unit vector, computed once per query (search and relevance both need it), by
        the fast single-text path of `lantern.embedding.load_query_embedder`."""
        if query not in self._query_vectors:
            from lantern.embedding import load_query_embedder

            if len(self._query_vectors) >= 64:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            model = load_query_embedder(self.settings.embed_model, without_torch=self.queries_without_torch)
            vector = model.encode([query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
            self._query_vectors[query] = vector.astype("float32")
        return self._query_vectors[query]

    def relevance(self, query: str, hits: list[Evidence]) -> list[float]:
        """Cosine similarity of each hit to the query, from the vectors stored at ingestion."""
        stored = self.store.vectors([hit.chunk_id for hit in hits])
        q = self.embed_query(query)
        return [float(stored[hit.chunk_id] @ q) if hit.chunk_id in stored else 0.0 for hit in hits]

    @property
    def dim(self) -> int:
        get_dim = getattr(self.embedder, "get_embedding_dimension", None) or self.embedder.get_sentence_embedding_dimension
        return int(get_dim())

    # --- verbs ---------------------------------------------------------------------------------
    @contextmanager
    def writing(self, say: Callable[[str], None] | None = None, wait: bool = True):
        """Hold the knowledge base's writer lock: one ingest or removal at a time, across processes.
        LanceDB commits are atomic, but two writers' index rebuilds and compactions conflict (the
        second one failed with a commit conflict); a second writer waits here instead, and saying
        so once. With `wait=False` a busy lock is not waited for: the block runs with False."""
        from filelock import FileLock, Timeout

        self.settings.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.settings.home / "kb.write.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                yield False
                return
            (say or log.warning)("another `lantern ingest` or `kb rm` is writing to this knowledge base; waiting for it to finish (Ctrl-C to stop).")
            lock.acquire()
        try:
            yield True
        finally:
            lock.release()

    def ingest(self, paths: list[str | Path], progress: IngestProgress | None = None) -> IngestReport:
        with self.writing(progress.message if progress is not None else None):
            return self._ingest(paths, progress)

    def _ingest(self, paths: list[str | Path], progress: IngestProgress | None) -> IngestReport:
        say = progress.message if progress is not None else None
        migrate.add_flags_column(self.store)  # rows are written with flags from now on
        if self.settings.flag_injections:
            self.flag_stored_chunks(say)
        report = ingest(
            self.store,
            self.embed,
            self.settings.embed_model,
            self.dim,
            [Path(p) for p in paths],
            exclude=self.settings.ingest_exclude,
            max_bytes=int(self.settings.max_file_mb * 1e6),
            chunk_chars=self.settings.chunk_chars,
            chunk_overlap=self.settings.chunk_overlap,
            batch_chunks=self.settings.ingest_batch,
            progress=progress,
            detect=self.detect_all if self.settings.flag_injections else None,
        )
        if not self.settings.flag_injections and report.chunks:
            migrate.forget_checked(self.store)  # rows written unchecked: checked when flagging is on again
        elif self.settings.flag_injections and not report.interrupted:
            self.flag_stored_chunks(say)  # rows carried over by a re-embed into a new table
        return report

    def detect_all(self, texts: list[str]) -> list[list[Flag]]:
        """The spans of each chunk text addressed to AI systems (lantern.knowledge.injection)."""
        from lantern.knowledge.injection import detect_all

        return detect_all(texts)

    def flag_stored_chunks(self, say: Callable[[str], None] | None = None) -> int:
        """Compute the flags of stored chunks that have none (see lantern.knowledge.migrate) from their
        stored text, with one line to `say`; the caller holds the writer lock. Returns chunks checked."""
        version = detector_version()
        if not migrate.unchecked(self.store, version):
            migrate.mark_checked(self.store, version)  # so that opening it need not count again
            return 0
        checked, flagged, renewed = migrate.flag_unchecked(self.store, self.detect_all, version)
        self.store.refresh_indexes()  # updated rows are new fragments: index them again
        found = f"{flagged} hold text addressed to AI systems (`lantern kb list --flagged`)" if flagged else "none holds text addressed to AI systems"
        why = " (this Lantern's detector differs from the one that checked them)" if renewed else ""
        line = f"knowledge base updated: checked {checked} stored chunks for instructions to AI systems, from their stored text{why}; {found}."
        (say or (lambda text: print(text, file=sys.stderr)))(line)
        log.info(line)
        return checked

    def flagged(self) -> list[Evidence]:
        """Every stored chunk holding flagged text, by source and line (flags of unchecked chunks are not known)."""
        from lantern.knowledge.search import to_evidence

        rows = self.store.flagged_rows()
        return [to_evidence(row | {"score": 0.0}) for row in sorted(rows, key=lambda r: (r["source"], int(r["start_line"])))]

    def keep_in_memory(self) -> None:
        """Search an in-memory copy of the chunks table from now on (lantern.knowledge.memory_index),
        kept current with ingests from any process; for a process that stays up and searches often
        (`lantern mcp`), where reading it once pays off. Tables over `memory_index_max_chunks` rows
        stay on LanceDB."""
        if self.memory_index is None and self.settings.memory_index_max_chunks > 0:
            self.memory_index = LiveMemoryIndex(self.store, self.settings.memory_index_max_chunks)

    def search(self, query: str, k: int | None = None, mode: SearchMode | None = None, notices: list[str] | None = None) -> list[Evidence]:
        """The top k passages; lines the user should see (a failed full-text search) go to `notices`."""
        index = self.memory_index.current() if self.memory_index is not None else None
        return self._search(query, k, mode, notices, index, lambda texts: [self.embed_query(t) for t in texts])

    def search_from_memory(self, query: str, k: int | None = None, mode: SearchMode | None = None,
                           notices: list[str] | None = None) -> list[Evidence] | None:
        """What `search` returns, when it can be had at once (well under a millisecond, so an event loop
        may call it): the in-memory copy is current, the query's vector was computed before, no
        reranker is set and the full-text part needs no LanceDB (no phrase query). None otherwise:
        then call `search`, in a worker thread. Neither the embedder nor LanceDB is touched here."""
        mode = mode or self.settings.search_mode
        if self.memory_index is None or self.settings.reranker or not query.strip():
            return None
        if mode != "vector" and not handles_text_query(query):
            return None
        vector = self._query_vectors.get(query)  # one read: a worker thread may evict it meanwhile
        if mode != "text" and vector is None:
            return None
        index = self.memory_index.current(wait=False)
        if index is None:
            return None
        return self._search(query, k, mode, notices, index, lambda texts: [vector for _ in texts])

    def _search(self, query: str, k: int | None, mode: SearchMode | None, notices: list[str] | None, index, embed) -> list[Evidence]:
        if not query.strip():
            raise KnowledgeBaseError('the query is empty; give words to look for, e.g. lantern search "exit gate".')
        if k is not None and k < 1:
            raise KnowledgeBaseError(f"cannot return {k} results; ask for 1 or more (-k 5).")
        self._check_embedder()
        if self.reranker is None and self.settings.reranker:
            from lantern.knowledge.search import CrossEncoderReranker

            try:
                self.reranker = CrossEncoderReranker(self.settings.reranker)
            except Exception as exc:
                raise KnowledgeBaseError(f"cannot load reranker {self.settings.reranker!r} ({exc.__class__.__name__}); give a local CrossEncoder folder or unset the reranker setting.") from exc
        return search(self.store, embed, query, self.settings.top_k if k is None else k, mode or self.settings.search_mode, self.reranker,
                      notices=notices, index=index)

    def files(self) -> list[StoredFile]:
        return sorted(self.store.stored_files().values(), key=lambda f: f.path)

    def remove(self, path: str | Path) -> list[str]:
        """Forget a file, or every file under a folder; returns the paths removed."""
        target = str(Path(path).expanduser().resolve())
        stored = self.store.stored_files()
        doomed = [p for p in stored if p == target or p.startswith(target.rstrip(os.sep) + os.sep)]
        if not doomed:
            raise KnowledgeBaseError(f"{path} is not in the knowledge base; `lantern kb list` shows what is.")
        with self.writing():
            self.store.remove_files(doomed)
            self.store.optimize()
        return doomed

    def count(self) -> int:
        return self.store.count()

    def source_text(self, source: str) -> str | None:
        """The text the chunks of `source` were cut from (the file's own text for text formats)."""
        return self.store.file_content(source)

    def _check_embedder(self) -> None:
        meta = self.store.meta()
        recorded = meta.get("embed_model")
        if recorded and recorded != self.settings.embed_model:
            raise KnowledgeBaseError(
                f"the knowledge base was embedded with {recorded}, not {self.settings.embed_model}; "
                f"run `lantern ingest` on your documents to re-embed, or set embed_model={recorded}."
            )


def retrieve(query: str, k: int | None = None, settings: Settings | None = None) -> list[Evidence]:
    """The top-k evidence passages for `query` from the configured knowledge base."""
    return KnowledgeBase.open(settings).search(query, k)
