"""The knowledge base on disk: an embedded LanceDB database with three tables.

- `chunks` rows (schema `chunk_model(dim)`, a LanceModel): one verbatim span of a file, its
  heading path, line span, the content hash of the file version it came from, and its vector.
  The table name carries the embedder (e.g. `chunks__all-minilm-l6-v2__384`), so vectors of two
  different models can never be mixed in one table.
- `files`: one row per ingested file: content hash, size, format, chunk count and the text the
  chunks were cut from (so a quote can always be checked verbatim).
- `meta`: key/value pairs; `chunks_table`, `embed_model` and `dim` name the live chunks table.

Every write is one LanceDB commit, which is atomic: a process killed mid-write leaves the table
at its previous version. This module stores and fetches rows and runs the two raw searches
(vector, full text); fusion and reranking live in `search.py`, file handling in `ingest.py`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable

from lancedb.pydantic import LanceModel, Vector

from lantern.errors import KnowledgeBaseError

log = logging.getLogger(__name__)

FILES_TABLE = "files"
META_TABLE = "meta"
VECTOR_INDEX_MIN_ROWS = 10_000
"""Below this many chunks exact (flat) search is cheap (under ~10 ms for MiniLM vectors on 2 cores); from here on an HNSW index is built."""


def chunk_model(dim: int) -> type[LanceModel]:
    """The LanceModel of one chunk row, for an embedder of dimension `dim`."""

    class ChunkRow(LanceModel):
        chunk_id: str
        source: str
        file_hash: str
        heading: str
        text: str
        search_text: str
        """heading path + text: what the full-text index sees."""
        start_line: int
        end_line: int
        vector: Vector(dim)  # type: ignore[valid-type]
        flags: str | None = None
        """JSON list of the spans flagged as instructions to AI systems (lantern.knowledge.injection);
        null: not checked yet (a table from before the column, or ingested with flag_injections off)."""

    return ChunkRow


class StoredFile(LanceModel):
    """What the knowledge base records about one ingested file (a files-table row without its text)."""

    path: str
    file_hash: str
    size: int
    format: str
    n_chunks: int
    ingested_at: str


class FileRow(StoredFile):
    content: str
    """The text the file's chunks were cut from, so any quote can be checked verbatim."""


class MetaRow(LanceModel):
    key: str
    value: str


def sql_str(value: str) -> str:
    """A SQL string literal for LanceDB filters."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(values: Iterable[str]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def chunks_table_name(base: str, embed_model: str, dim: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", Path(embed_model).name.lower()).strip("-") or "model"
    digest = hashlib.sha1(embed_model.encode()).hexdigest()[:8]  # two models may share a basename
    return f"{base}__{slug}-{digest}__{dim}"


class Store:
    """Open (creating on demand) the database at `path`."""

    def __init__(self, path: Path, base_table: str = "chunks") -> None:
        import lancedb

        self.path = path
        self.base_table = base_table
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.db = lancedb.connect(str(path))
        except Exception as exc:
            raise KnowledgeBaseError(f"cannot open the knowledge base at {path} ({exc}); check the path and its permissions.") from exc
        self._tables: dict[str, Any] = {}
        self._meta: dict[str, str] | None = None
        self._meta_version: int | None = None

    # --- tables ------------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        return list(self.db.list_tables().tables)

    def _table(self, name: str, schema: type[LanceModel] | None = None):
        if name not in self._tables:
            if name in self.table_names():
                self._tables[name] = self.db.open_table(name)
            elif schema is not None:
                self._tables[name] = self.db.create_table(name, schema=schema, exist_ok=True)
            else:
                return None
        return self._tables[name]

    def meta(self) -> dict[str, str]:
        """The KB's key/value record, read once per Store: every search needs the live table's name,
        and re-reading it cost a millisecond a query. (Open LanceDB tables do not see other
        processes' writes either; a new Store does.)"""
        meta = self._meta  # one read: `refresh` in another thread may reset it meanwhile
        if meta is None:
            table = self._table(META_TABLE)
            meta = self._meta = {row["key"]: row["value"] for row in table.to_arrow().to_pylist()} if table is not None else {}
        return dict(meta)

    def refresh(self) -> tuple[str, int] | None:
        """The live chunks table's name and version as of now, after moving the meta and chunks tables
        to their latest versions: an open table stays at its version while other processes write, so a
        process that stays up (the MCP server) calls this to see their ingests. None: nothing ingested."""
        meta = self._table(META_TABLE)
        if meta is not None:
            meta.checkout_latest()
            if meta.version != self._meta_version:
                self._meta, self._meta_version = None, meta.version
        table = self.chunks()
        if table is None:
            return None
        table.checkout_latest()
        return table.name, table.version

    def set_meta(self, values: dict[str, str]) -> None:
        table = self._table(META_TABLE, MetaRow)
        rows = [{"key": k, "value": v} for k, v in values.items()]
        table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        self._meta = None

    def chunks(self):
        """The live chunks table, or None when nothing was ingested yet."""
        name = self.meta().get("chunks_table")
        return self._table(name) if name else None

    def create_chunks_table(self, embed_model: str, dim: int):
        """A new, empty chunks table for this embedder (not yet live: see `make_live`)."""
        name = chunks_table_name(self.base_table, embed_model, dim)
        if name in self.table_names():  # left over from an interrupted re-embed
            self.db.drop_table(name)
            self._tables.pop(name, None)
        return self._table(name, chunk_model(dim))

    def make_live(self, table, embed_model: str, dim: int) -> None:
        """Point the KB at `table` (one atomic meta write), then drop the table it replaces."""
        old = self.meta().get("chunks_table")
        self.set_meta({"chunks_table": table.name, "embed_model": embed_model, "dim": str(dim)})
        if old and old != table.name and old in self.table_names():
            self.db.drop_table(old)
            self._tables.pop(old, None)

    def files(self):
        return self._table(FILES_TABLE, FileRow)

    # --- reads -------------------------------------------------------------------------------
    def stored_files(self) -> dict[str, StoredFile]:
        table = self._table(FILES_TABLE)
        if table is None:
            return {}
        columns = list(StoredFile.model_fields)
        rows = table.search().select(columns).limit(None).to_arrow().to_pylist()
        return {row["path"]: StoredFile(**row) for row in rows}

    def file_content(self, path: str) -> str | None:
        table = self._table(FILES_TABLE)
        if table is None:
            return None
        rows = table.search().where(f"path = {sql_str(path)}").select(["content"]).limit(1).to_list()
        return rows[0]["content"] if rows else None

    def vectors(self, chunk_ids: list[str]) -> dict[str, "np.ndarray"]:
        """The stored vectors of these chunks (ids that are not stored are left out)."""
        import numpy as np

        table = self.chunks()
        if table is None or not chunk_ids:
            return {}
        rows = table.search().where(f"chunk_id IN {sql_in(chunk_ids)}").select(["chunk_id", "vector"]).limit(len(chunk_ids)).to_list()
        return {row["chunk_id"]: np.asarray(row["vector"], dtype=np.float32) for row in rows}

    def count(self) -> int:
        table = self.chunks()
        return table.count_rows() if table is not None else 0

    def flagged_rows(self) -> list[dict[str, Any]]:
        """Chunks holding text flagged as instructions to AI systems (search result columns)."""
        table = self.chunks()
        if table is None or "flags" not in table.schema.names:
            return []
        return table.search().where("flags IS NOT NULL AND flags != '[]'").select(result_columns(table)).limit(None).to_list()

    # --- writes ------------------------------------------------------------------------------
    def upsert_chunks(self, table, rows: list[dict[str, Any]]) -> None:
        if rows:
            table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def upsert_files(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.files().merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def delete_stale_chunks(self, table, current: dict[str, str]) -> None:
        """Remove chunks of the given files that belong to any version but `current[path]`."""
        if not current:
            return
        clauses = " OR ".join(f"(source = {sql_str(p)} AND file_hash != {sql_str(h)})" for p, h in current.items())
        table.delete(clauses)

    def remove_files(self, paths: list[str]) -> None:
        """Forget files: their chunks first, then their rows (a rerun can always finish the job)."""
        if not paths:
            return
        for start in range(0, len(paths), 500):
            batch = paths[start : start + 500]
            table = self.chunks()
            if table is not None:
                table.delete(f"source IN {sql_in(batch)}")
            self.files().delete(f"path IN {sql_in(batch)}")

    # --- maintenance -------------------------------------------------------------------------
    def refresh_indexes(self) -> None:
        """(Re)build the full-text index, and the vector index once the table is large."""
        from lancedb.index import FTS

        table = self.chunks()
        if table is None or table.count_rows() == 0:
            return
        table.create_index(
            "search_text",
            config=FTS(language="English", stem=True, remove_stop_words=True, lower_case=True, ascii_folding=True),
            replace=True,
        )
        if table.count_rows() >= VECTOR_INDEX_MIN_ROWS:
            table.create_index(metric="cosine", index_type="IVF_HNSW_SQ", vector_column_name="vector", replace=True)

    def optimize(self) -> None:
        """Compact files and drop old versions so they do not pile up."""
        for name in (self.meta().get("chunks_table"), FILES_TABLE, META_TABLE):
            table = self._table(name) if name else None
            if table is not None:
                try:
                    with warnings.catch_warnings():  # single-user KB: dropping old versions is the point
                        warnings.simplefilter("ignore")
                        table.optimize(cleanup_older_than=timedelta(seconds=0))
                except Exception as exc:  # compaction is housekeeping; never fail an ingest on it
                    log.warning("optimize %s failed: %s", name, exc)

    # --- raw searches --------------------------------------------------------------------------
    def vector_search(self, vector: list[float], limit: int, where: str | None = None) -> list[dict[str, Any]]:
        table = self.chunks()
        if table is None:
            return []
        query = table.search(vector, vector_column_name="vector").distance_type("cosine").limit(limit)
        if where:
            query = query.where(where, prefilter=True)
        rows = query.select(result_columns(table) + ["_distance"]).to_list()
        for row in rows:
            row["score"] = 1.0 - float(row.pop("_distance"))
        return rows

    def text_search(self, query: str, limit: int, where: str | None = None) -> list[dict[str, Any]]:
        table = self.chunks()
        if table is None or not query.strip():
            return []
        builder = table.search(query, query_type="fts", fts_columns="search_text").limit(limit)
        if where:
            builder = builder.where(where, prefilter=True)
        try:
            rows = builder.select(result_columns(table) + ["_score"]).to_list()
        except Exception as exc:  # e.g. a query of only stop words or special syntax
            log.warning("full-text search failed for %r: %s", query, exc)
            raise TextSearchFailed(f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}") from exc
        for row in rows:
            row["score"] = float(row.pop("_score"))
        return rows


class TextSearchFailed(Exception):
    """LanceDB's full-text search could not run this query; the message says why."""


_RESULT_COLUMNS = ["chunk_id", "source", "heading", "text", "start_line", "end_line"]


def result_columns(table) -> list[str]:
    """The columns a search returns: the flags too, once the table has them (see lantern.knowledge.migrate)."""
    return _RESULT_COLUMNS + (["flags"] if "flags" in table.schema.names else [])
