"""An in-memory copy of the chunks table, for processes that stay up and search often (the MCP
server): both raw searches of `store.py` answered from memory in microseconds instead of LanceDB's
milliseconds, with the same rows and scores.

- `MemoryIndex`: one version of the table, read once: the rows' columns (every column but the
  vector and the full-text input, so columns added later come along untouched), the unit vectors
  as one float32 matrix (cosine similarity is one matrix-vector product; LanceDB's flat search
  computes the same numbers), and `fulltext.FullTextIndex` (BM25 as LanceDB's full-text index
  scores it; see that module for what may differ).
- `LiveMemoryIndex`: keeps a `MemoryIndex` current with the table. Every query lists the tables'
  `_versions` folders (LanceDB adds a manifest with a new name there on every commit: two listings,
  about 10 microseconds); when a listing changed, LanceDB itself is asked for the latest version
  (`Store.refresh`, a few hundred microseconds), and a new version is read again in full. Where
  the folders are not there to list (another LanceDB layout, nothing ingested yet), LanceDB is
  asked at most every `check_seconds` instead. A table of up to `inline_rows` rows is read by the
  search that finds it changed (milliseconds); a larger one in a background thread (reading and
  tokenizing take about 0.3 ms a chunk here), while LanceDB answers. A table with more than
  `max_chunks` rows is not copied at all: brute-force cosine over all vectors grows with the table
  (about 3 ms at 50,000 chunks on this 2-core machine, as much as LanceDB's whole search), and so
  does the RAM (1.5 kB of vector per chunk plus its text).

LanceDB stays the reference: `search.py` uses the store's own searches when there is no index
(one-shot commands, large tables, SQL `where` filters), and the tests compare the two.
This module knows nothing about fusion, embeddings or files.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lantern.knowledge.fulltext import FullTextIndex, top, top_of
from lantern.knowledge.store import META_TABLE

log = logging.getLogger(__name__)

MAX_CHUNKS = 50_000
"""Default for the `memory_index_max_chunks` setting (see the module docstring for why)."""
INLINE_ROWS = 2_000
"""Tables up to this size are read by the search that needs them; larger ones in the background."""
CHECK_SECONDS = 1.0
"""How stale the index may be where LanceDB's `_versions` folders cannot be listed."""
NOT_COPIED = ("vector", "search_text")
"""Columns the rows do not carry: the vector lives in the matrix, `search_text` in the BM25 index."""


@dataclass(frozen=True)
class TableVersion:
    name: str
    version: int


class MemoryIndex:
    """One version of the chunks table in memory; rows are numbered in the table's scan order."""

    def __init__(self, version: TableVersion, columns: dict[str, list[Any]], vectors: np.ndarray, search_texts: list[str]) -> None:
        self.version = version
        self._rows = [dict(zip(columns, values)) for values in zip(*columns.values())]  # shares the column values
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._unit_vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)  # [rows, dim]
        self._fulltext = FullTextIndex(search_texts)
        self.rows = len(search_texts)

    @classmethod
    def read(cls, table, version: TableVersion) -> "MemoryIndex":
        """Copy every row of `table` (a LanceDB table at `version`) into memory."""
        data = table.to_arrow()
        vectors = data.column("vector").combine_chunks()
        dim = vectors.type.list_size
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(data), dim)
        columns = {name: data.column(name).to_pylist() for name in data.column_names if name not in NOT_COPIED}
        return cls(version, columns, matrix, data.column("search_text").to_pylist())

    def row(self, i: int, score: float) -> dict[str, Any]:
        """Row `i` as the store's searches return rows: its columns and a `score`."""
        return dict(self._rows[i], score=score)

    def vector_search(self, vector, limit: int) -> list[dict[str, Any]]:
        """Store.vector_search from memory: cosine similarity, best first (exact, also where LanceDB
        would use its approximate index)."""
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        # einsum, not BLAS: one thread, so a busy machine cannot stall it waiting for a second one
        similarity = np.einsum("ij,j->i", self._unit_vectors, query / norm if norm else query)
        return [self.row(i, score) for i, score in top_of(similarity, limit)]

    def text_search(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Store.text_search from memory: BM25, best first, only rows holding a query term."""
        if not query.strip():
            return []
        rows, scores = self._fulltext.scores(query)
        return [self.row(i, score) for i, score in top(rows, scores, limit)]


def handles_text_query(query: str) -> bool:
    """Whether `text_search` ranks `query` as LanceDB does. A double quote makes LanceDB parse a
    phrase query (which our index, built without word positions, refuses with an error): such
    queries go to LanceDB, so the user sees the same results and the same notice."""
    return '"' not in query


class LiveMemoryIndex:
    """The current `MemoryIndex` of a store's chunks table, rebuilt after every change to it."""

    def __init__(self, store, max_chunks: int = MAX_CHUNKS, check_seconds: float = CHECK_SECONDS) -> None:
        self.store = store
        self._folder = str(store.path)
        self.max_chunks = max_chunks
        self.check_seconds = check_seconds
        self._index: MemoryIndex | None = None
        self._live: TableVersion | None = None  # the version LanceDB last named, copied or not
        self._marks: tuple | None = None  # the _versions listings when LanceDB was last asked
        self._checked_at = -float("inf")
        self._lock = threading.Lock()  # one reader of LanceDB at a time; readers of `_index` never wait
        self.inline_rows = INLINE_ROWS
        self.building: threading.Thread | None = None

    def current(self, wait: bool = True) -> MemoryIndex | None:
        """The index of the table as it is now, or None when LanceDB should answer (no table yet, more
        rows than `max_chunks`, or a failure to read it, which is logged). With `wait=False` nothing
        slow happens: None also when LanceDB must be asked for the version or the table read again."""
        marks = self._commit_marks()
        if self._unchanged(marks):
            return self._index
        if not wait:
            return None
        with self._lock:
            if self._unchanged(marks):
                return self._index  # another thread has just done it
            while True:
                named = self._live_name()
                self._index = self._read_if_changed()
                if self._live_name() == named:
                    break
                marks = self._commit_marks()  # of the table just named, listed before LanceDB is asked again
            self._marks, self._checked_at = marks, time.monotonic()
            return self._index

    def _unchanged(self, marks: tuple) -> bool:
        if marks != self._marks:
            return False
        return None not in marks or time.monotonic() - self._checked_at < self.check_seconds

    def _read_if_changed(self) -> MemoryIndex | None:
        try:
            live = self.store.refresh()
            self._live = version = TableVersion(*live) if live is not None else None
            if version is None:
                return None
            if self._index is not None and self._index.version == version:
                return self._index
            table = self.store.chunks()
            rows = table.count_rows()
            if rows > self.max_chunks:
                return None
            if rows > self.inline_rows:
                self._read_in_background(version.name)
                return None
            return self._read(table, version)
        except Exception as exc:  # LanceDB answers instead, and raises what it raises
            self._live = None
            log.warning("in-memory index not built (%s: %s); searching LanceDB", exc.__class__.__name__, exc)
            return None

    def _read(self, table, version: TableVersion) -> MemoryIndex:
        started = time.perf_counter()
        index = MemoryIndex.read(table, version)
        log.info("in-memory index of %s v%d: %d chunks in %.2f s", version.name, version.version, index.rows, time.perf_counter() - started)
        return index

    def _read_in_background(self, name: str) -> None:
        """Read the table through a handle of its own; the next search checks the version again."""
        if self.building is not None and self.building.is_alive():
            return  # when it is done, the version is checked again: a newer one is read then

        def read() -> None:
            try:
                table = self.store.db.open_table(name)
                index = self._read(table, TableVersion(name, table.version))
            except Exception as exc:
                log.warning("in-memory index not built (%s: %s); searching LanceDB", exc.__class__.__name__, exc)
                return
            with self._lock:
                self._index, self._marks = index, None

        self.building = threading.Thread(target=read, name="lantern-memory-index", daemon=True)
        self.building.start()

    def _live_name(self) -> str | None:
        return self._live.name if self._live is not None else None

    def _commit_marks(self) -> tuple:
        """What the meta and chunks tables' `_versions` folders hold (None where a folder cannot be
        listed): every commit to either table adds a manifest file with a new name."""
        marks = []
        for name in (META_TABLE, self._live_name()):
            try:
                marks.append(frozenset(os.listdir(os.path.join(self._folder, f"{name}.lance", "_versions"))) if name else None)
            except OSError:
                marks.append(None)
        return tuple(marks)
