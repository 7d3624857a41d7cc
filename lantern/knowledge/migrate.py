"""Bring a knowledge base written by an older Lantern up to the current chunks schema, in place.

The one change so far is the `flags` column (the spans `lantern.knowledge.injection` flags as
instructions to AI systems). A chunks table from before it first gets the column, every row null
("not checked"): one atomic commit. Then the flags of the unchecked chunks are computed from their
stored text (no file is read again, no chunk re-embedded) and written in batches, each batch an
atomic commit. A run killed midway leaves rows null, and the next run finishes them; chunks
ingested with `flag_injections` off are null too, and are checked once it is on again. When no
row is null the meta table says so (`CHECKED_KEY`), so opening a knowledge base costs no scan.

This module knows nothing about how flags are found: the caller passes `detect_all`.
"""

from __future__ import annotations

from typing import Callable

from lantern.knowledge.injection import to_json
from lantern.knowledge.store import Store, sql_in, sql_str
from lantern.records import Flag

DetectAll = Callable[[list[str]], list[list[Flag]]]
BATCH = 256
"""Chunks checked and written per commit."""
CHECKED_KEY = "flags_checked"
"""Meta key naming the chunks table all of whose rows have flags, so opening a knowledge base need
not scan the column each time; an ingest that writes unchecked rows clears it."""


def add_flags_column(store: Store) -> None:
    """Give the live chunks table its `flags` column (null: not checked) when it lacks one."""
    table = store.chunks()
    if table is not None and "flags" not in table.schema.names:
        table.add_columns({"flags": "CAST(NULL AS STRING)"})


def unchecked(store: Store) -> int:
    """How many chunks of the live table have no flags yet (all of them when the column is missing)."""
    table = store.chunks()
    if table is None or store.meta().get(CHECKED_KEY) == table.name:
        return 0
    if "flags" not in table.schema.names:
        return table.count_rows()
    return table.count_rows("flags IS NULL")


def mark_checked(store: Store) -> None:
    """Record that every row of the live table has flags (the caller holds the writer lock)."""
    table = store.chunks()
    if table is not None and store.meta().get(CHECKED_KEY) != table.name:
        store.set_meta({CHECKED_KEY: table.name})


def forget_checked(store: Store) -> None:
    """Say that the live table may hold unchecked rows (written with flag_injections off)."""
    if store.meta().get(CHECKED_KEY):
        store.set_meta({CHECKED_KEY: ""})


def flag_unchecked(store: Store, detect_all: DetectAll, batch: int | None = None) -> tuple[int, int]:
    """Add the flags column when it is missing and fill every null row; returns (chunks checked,
    chunks flagged). The caller holds the knowledge base's writer lock."""
    add_flags_column(store)
    table = store.chunks()
    if table is None:
        return 0, 0
    checked = flagged = 0
    pending = [row["chunk_id"] for row in table.search().where("flags IS NULL").select(["chunk_id"]).limit(None).to_list()]
    batch = batch or BATCH
    for start in range(0, len(pending), batch):
        ids = pending[start : start + batch]
        rows = table.search().where(f"chunk_id IN {sql_in(ids)}").select(["chunk_id", "text"]).limit(len(ids)).to_list()
        found = detect_all([row["text"] for row in rows])
        clean = [row["chunk_id"] for row, flags in zip(rows, found) if not flags]
        if clean:
            table.update(where=f"chunk_id IN {sql_in(clean)}", values={"flags": "[]"})
        for row, flags in zip(rows, found):
            if flags:
                table.update(where=f"chunk_id = {sql_str(row['chunk_id'])}", values={"flags": to_json(flags)})
        checked += len(rows)
        flagged += len(rows) - len(clean)
    mark_checked(store)
    return checked, flagged
