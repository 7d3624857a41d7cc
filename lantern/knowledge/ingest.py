"""Files and folders -> chunks in the store, incrementally and safely.

For every file: hash its bytes; if the knowledge base holds that exact version, skip it; else read
it (readers.py), cut it (chunking.py), embed the chunks, find any text in them addressed to AI
systems (injection.py; stored in the chunk's `flags` column) and write them. Writes go in batches, and
each batch is three atomic commits in an order that survives being killed at any point:
1. upsert the new chunks (ids derive from path + content hash + position, so a retry rewrites
   the same rows instead of duplicating them);
2. delete the chunks of older versions of those files;
3. record the files' new hashes in the files table.
A file counts as ingested only after step 3, so an interrupted run is finished by running it again,
and the previous version of a file stays searchable until its replacement is written.
Files under an ingested folder that no longer exist are pruned. After each run the full-text
index is refreshed and the tables compacted.

This module knows nothing about how search ranks results.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

from lantern.knowledge.chunking import TextChunk, chunk_text
from lantern.knowledge.readers import SkipFile, format_of, parse_document, read_bytes
from lantern.knowledge.injection import to_json
from lantern.knowledge.store import Store
from lantern.records import Flag

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], list[list[float]]]
DetectAll = Callable[[list[str]], list[list[Flag]]]
"""Chunk texts -> the flagged spans of each (lantern.knowledge.injection.detect_all)."""


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path, one-line reason)"""
    chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    interrupted: bool = False
    reembedded: int = 0
    flagged: int = 0
    """Chunks written with text flagged as instructions to AI systems (lantern.knowledge.injection)."""
    detect_seconds: float = 0.0
    """Time spent finding such text (part of `seconds`)."""
    ignored: int = 0
    """Files under the given folders that are of no supported type (images, archives, ...)."""

    def named_failures(self, given: list[str]) -> list[tuple[str, str]]:
        """Failures of paths the user named themselves (a typo, an unsupported file asked for by name),
        as opposed to bad files met while walking a folder."""
        named = {str(Path(p).expanduser().resolve()) for p in given} | set(given)
        return [(path, reason) for path, reason in self.failed if path in named or str(Path(path).expanduser().resolve()) in named]


class IngestProgress(Protocol):
    def start(self, total_files: int) -> None: ...
    def advance(self, files: int, chunks: int) -> None: ...
    def message(self, text: str) -> None: ...


class _Silent:
    def start(self, total_files: int) -> None: ...
    def advance(self, files: int, chunks: int) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass
class _Pending:
    path: str
    file_hash: str
    size: int
    format: str
    content: str
    chunks: list[TextChunk]
    is_update: bool


def embedding_input(heading: str, text: str) -> str:
    """What the embedder sees for a chunk: its heading path gives the passage its context."""
    return f"{heading}\n{text}" if heading else text


def chunk_id(path: str, file_hash: str, index: int) -> str:
    return hashlib.sha1(f"{path}\0{file_hash}\0{index}".encode()).hexdigest()[:24]


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def is_excluded(path: Path, root: Path, patterns: list[str]) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in patterns)


def discover(paths: list[Path], exclude: list[str]) -> tuple[list[Path], list[tuple[str, str]], list[Path], int]:
    """(files to consider, failures for named paths, folders walked, files ignored). Files of no
    supported type under a folder are ignored (counted, not failed): a docs folder holds images."""
    files: list[Path] = []
    ignored = 0
    failed: list[tuple[str, str]] = []
    folders: list[Path] = []
    for given in paths:
        path = given.expanduser().resolve()
        if path.is_dir():
            folders.append(path)
            for dirpath, dirnames, filenames in os.walk(path):
                here = Path(dirpath)
                dirnames[:] = sorted(d for d in dirnames if not is_excluded(here / d, path, exclude))
                for name in sorted(filenames):
                    candidate = here / name
                    if is_excluded(candidate, path, exclude) or candidate.is_symlink():
                        continue
                    if format_of(candidate):
                        files.append(candidate)
                    else:
                        ignored += 1
        elif path.is_file():
            files.append(path)
        elif not path.exists():
            failed.append((str(given), "no such file or directory"))
        else:
            failed.append((str(given), "not a regular file"))
    return list(dict.fromkeys(files)), failed, folders, ignored


def ingest(
    store: Store,
    embed: Embed,
    embed_model: str,
    dim: int,
    paths: list[Path],
    *,
    exclude: list[str],
    max_bytes: int,
    chunk_chars: int,
    chunk_overlap: int,
    batch_chunks: int = 256,
    progress: IngestProgress | None = None,
    detect: DetectAll | None = None,
) -> IngestReport:
    """Bring the knowledge base in line with `paths`; see the module docstring for the guarantees.
    `detect` finds text addressed to AI systems in each chunk (stored in the `flags` column); without
    it the column is left null, which means "not checked"."""
    progress = progress or _Silent()
    report = IngestReport()
    began = time.perf_counter()
    try:
        table = _live_table(store, embed, embed_model, dim, report, progress)
        files, report.failed, folders, report.ignored = discover(paths, exclude)
        stored = store.stored_files()
        progress.start(len(files))
        pending: list[_Pending] = []
        for path in files:
            item = _prepare(path, stored, max_bytes, chunk_chars, chunk_overlap, report)
            if item is None:
                progress.advance(1, 0)
                continue
            pending.append(item)
            if sum(len(p.chunks) for p in pending) >= batch_chunks:
                _write(store, table, embed, pending, report, progress, detect)
                pending = []
        _write(store, table, embed, pending, report, progress, detect)
        _prune(store, stored, paths, folders, files, report)
    except KeyboardInterrupt:
        report.interrupted = True
    if not report.interrupted:
        progress.message("updating the search index")
        store.refresh_indexes()
        store.optimize()
    report.seconds = time.perf_counter() - began
    return report


def _live_table(store: Store, embed: Embed, embed_model: str, dim: int, report: IngestReport, progress: IngestProgress):
    """The chunks table for this embedder; re-embeds every chunk when the embedder changed."""
    meta = store.meta()
    table = store.chunks()
    if table is not None and meta.get("embed_model") == embed_model and meta.get("dim") == str(dim):
        return table
    new_table = store.create_chunks_table(embed_model, dim)
    if table is not None:
        rows = table.search().select([c for c in table.schema.names if c != "vector"]).limit(None).to_arrow().to_pylist()
        progress.message(f"embedder changed from {meta.get('embed_model')} to {embed_model}: re-embedding {len(rows)} chunks")
        for start in range(0, len(rows), 512):
            batch = rows[start : start + 512]
            vectors = embed([embedding_input(r["heading"], r["text"]) for r in batch])
            for row, vector in zip(batch, vectors):
                row["vector"] = list(map(float, vector))
            store.upsert_chunks(new_table, batch)
        report.reembedded = len(rows)
    store.make_live(new_table, embed_model, dim)
    return new_table


def _prepare(path: Path, stored: dict, max_bytes: int, chunk_chars: int, chunk_overlap: int, report: IngestReport) -> _Pending | None:
    key = str(path)
    try:
        raw = read_bytes(path, max_bytes)  # once: the hash and the text come from the same bytes
    except SkipFile as exc:
        report.failed.append((key, str(exc)))
        return None
    digest = content_hash(raw)
    previous = stored.get(key)
    if previous is not None and previous.file_hash == digest:
        report.unchanged.append(key)
        return None
    try:
        document = parse_document(path, raw)
    except SkipFile as exc:
        report.failed.append((key, str(exc)))
        return None
    chunks = chunk_text(document.text, document.format, chunk_chars, chunk_overlap)
    if not chunks:
        report.failed.append((key, "no text in file"))
        return None
    return _Pending(key, digest, len(raw), document.format, document.text, chunks, previous is not None)


def _write(store: Store, table, embed: Embed, pending: list[_Pending], report: IngestReport, progress: IngestProgress,
           detect: DetectAll | None = None) -> None:
    if not pending:
        return
    texts = [embedding_input(c.heading, c.text) for item in pending for c in item.chunks]
    started = time.perf_counter()
    vectors = embed(texts)
    report.embed_seconds += time.perf_counter() - started
    flags: list[str | None] = [None] * len(texts)
    if detect is not None:
        started = time.perf_counter()
        flags = [to_json(found) for found in detect([c.text for item in pending for c in item.chunks])]
        report.detect_seconds += time.perf_counter() - started
        report.flagged += sum(value != "[]" for value in flags)
    rows, position = [], 0
    for item in pending:
        for index, chunk in enumerate(item.chunks):
            rows.append(
                {
                    "chunk_id": chunk_id(item.path, item.file_hash, index),
                    "source": item.path,
                    "file_hash": item.file_hash,
                    "heading": chunk.heading,
                    "text": chunk.text,
                    "search_text": embedding_input(chunk.heading, chunk.text),
                    "start_line": chunk.start_line,
                    "end_line": chunk.end_line,
                    "vector": list(map(float, vectors[position])),
                    "flags": flags[position],
                }
            )
            position += 1
    store.upsert_chunks(table, rows)
    store.delete_stale_chunks(table, {item.path: item.file_hash for item in pending if item.is_update})
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.upsert_files(
        [
            {"path": i.path, "file_hash": i.file_hash, "size": i.size, "format": i.format, "n_chunks": len(i.chunks), "ingested_at": now, "content": i.content}
            for i in pending
        ]
    )
    for item in pending:
        (report.updated if item.is_update else report.added).append(item.path)
    report.chunks += len(rows)
    progress.advance(len(pending), len(rows))


def _prune(store: Store, stored: dict, given: list[Path], folders: list[Path], seen: list[Path], report: IngestReport) -> None:
    """Forget files that were under an ingested folder (or named directly) and are gone now."""
    seen_keys = {str(p) for p in seen}
    roots = [str(folder) + os.sep for folder in folders]
    named_missing = {str(p.expanduser().resolve()) for p in given if not p.expanduser().exists()}
    gone = []
    for key in stored:
        if key in seen_keys:
            continue
        under_folder = any(key.startswith(root) for root in roots) and not Path(key).exists()
        under_missing = any(key == m or key.startswith(m + os.sep) for m in named_missing)
        if under_folder or under_missing:
            gone.append(key)
    if gone:
        store.remove_files(gone)
        report.removed.extend(gone)
        if named_missing:
            report.failed = [(p, r) for p, r in report.failed if str(Path(p).expanduser().resolve()) not in named_missing]
