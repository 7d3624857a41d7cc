"""Bring a knowledge base written by an older Lantern up to the current chunks schema, in place.

The one change so far is the `flags` column (the spans `lantern.knowledge.injection` flags as
instructions to AI systems). A chunks table from before it first gets the column, every row null
("not checked"): one atomic commit. Then the flags of the unchecked chunks are computed from their
stored text (no file is read again, no chunk re-embedded) and written in batches, each batch an
atomic commit. A run killed midway leaves rows null, and the next run finishes them; chunks
ingested with `flag_injections` off are null too, and are checked once it is on again. When no
row is null the meta table says so (`CHECKED_KEY`), so opening a knowledge base costs no scan.
The meta table also names the detector whose flags the rows hold (`DETECTOR_KEY`, the caller's
version string): when Lantern's detector changes, every row is set back to null in one atomic
update and checked again the same way, so an upgrade never leaves flags of an older detector.

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

DETECTOR_KEY = "flags_detector"
"""Meta key naming the detector version whose flags the stored rows hold."""


def add_flags_column(store: Store) -> None:
    """Give the live chunks table its `flags` column (null: not checked) when it lacks one."""
    table = store.chunks()
    if table is not None and "flags" not in table.schema.names:
        table.add_columns({"flags": "CAST(NULL AS STRING)"})


def unchecked(store: Store, detector: str) -> int:
    """How many chunks of the live table have no flags of `detector` yet (all of them when the
    column is missing or the rows' flags came from another detector)."""
    table = store.chunks()
    if table is None:
        return 0
    meta = store.meta()
    if meta.get(DETECTOR_KEY) == detector and meta.get(CHECKED_KEY) == table.name:
        return 0
    if "flags" not in table.schema.names or meta.get(DETECTOR_KEY) != detector:
        return table.count_rows()
    return table.count_rows("flags IS NULL")


def mark_checked(store: Store, detector: str) -> None:
    """Record that every row of the live table (if any) has flags of `detector` (the caller holds
    the writer lock); an empty knowledge base records the detector its first rows will be written with."""
    table = store.chunks()
    wanted = {DETECTOR_KEY: detector} | ({CHECKED_KEY: table.name} if table is not None else {})
    meta = store.meta()
    if any(meta.get(key) != value for key, value in wanted.items()):
        store.set_meta(wanted)


def forget_checked(store: Store) -> None:
    """Say that the live table may hold unchecked rows (written with flag_injections off)."""
    if store.meta().get(CHECKED_KEY):
        store.set_meta({CHECKED_KEY: ""})


def flag_unchecked(store: Store, detect_all: DetectAll, detector: str, batch: int | None = None) -> tuple[int, int, bool]:
    """Add the flags column when it is missing, clear flags of another detector, and fill every
    null row with `detect_all`'s (version `detector`); returns (chunks checked, chunks flagged,
    whether flags of another detector were cleared). The caller holds the knowledge base's writer lock."""
    before = store.chunks()
    had_flags = before is not None and "flags" in before.schema.names
    add_flags_column(store)
    table = store.chunks()
    if table is None:
        mark_checked(store, detector)
        return 0, 0, False
    renewed = had_flags and store.meta().get(DETECTOR_KEY) != detector
    if store.meta().get(DETECTOR_KEY) != detector:
        # Killed between these two commits, the next run clears them again: no harm, nothing lost.
        table.update(where="flags IS NOT NULL", values_sql={"flags": "CAST(NULL AS STRING)"})
        store.set_meta({DETECTOR_KEY: detector, CHECKED_KEY: ""})
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
    mark_checked(store, detector)
    return checked, flagged, renewed
