"""`lantern ingest`, `lantern search`, `lantern kb list|rm`: the knowledge base."""

from __future__ import annotations


import typer

from lantern.commands import common

kb_app = typer.Typer(help="Inspect and edit the knowledge base.", no_args_is_help=True)


class _RichProgress:
    """Files done / total, chunks per second and ETA on stderr (quiet when stderr is not a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files  {task.fields[chunks]} chunks  {task.fields[rate]:.1f} chunks/s"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.task = None
        self.chunks = 0
        self.started = 0.0

    def start(self, total_files: int) -> None:
        import time

        self.started = time.perf_counter()
        self.progress.start()
        self.task = self.progress.add_task("ingest", total=total_files, chunks=0, rate=0.0)

    def advance(self, files: int, chunks: int) -> None:
        import time

        self.chunks += chunks
        rate = self.chunks / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=files, chunks=self.chunks, rate=rate)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self.progress.stop()



def _flag_lines(passage, flag) -> tuple[int, int]:
    """The file lines a flag of `passage` spans."""
    return (passage.start_line + passage.text.count("\n", 0, flag.start), passage.start_line + passage.text.count("\n", 0, max(flag.start, flag.end - 1)))


def _flag_where(passage, flag) -> str:
    first, last = _flag_lines(passage, flag)
    return f"line {first}" if first == last else f"lines {first}-{last}"


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Knowledge base")
    def ingest(
        paths: list[str] = typer.Argument(..., help="Files or folders to add (folders recursively)."),
        exclude: list[str] = typer.Option(None, "--exclude", "-x", help="Extra glob pattern of files/folders to skip (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Add files and folders to the knowledge base; unchanged files are skipped, changed ones replaced.

        Formats: Markdown, text, reStructuredText, HTML, PDF (text layer), source code.
        Example: `lantern ingest ~/notes docs/ -x "*.draft.md"`
        """
        from lantern.knowledge import KnowledgeBase

        settings = common.settings()
        if exclude:
            settings = settings.model_copy(update={"ingest_exclude": settings.ingest_exclude + list(exclude)})
        kb = KnowledgeBase.open(settings)
        progress = _RichProgress()
        try:
            report = kb.ingest(paths, progress=progress)
        finally:
            progress.stop()
        if as_json:
            common.print_json(
                {
                    "added": report.added, "updated": report.updated, "unchanged": len(report.unchanged),
                    "removed": report.removed, "failed": [{"path": p, "reason": r} for p, r in report.failed],
                    "ignored": report.ignored, "chunks": report.chunks, "seconds": round(report.seconds, 3),
                    "interrupted": report.interrupted, "total_chunks": kb.count(), "flagged_chunks": report.flagged,
                }
            )
        else:
            for path, reason in report.failed:
                common.notice(f"skipped {common.display_path(path)}: {reason}")
            rate = report.chunks / report.seconds if report.seconds else 0.0
            print(
                f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
                f"{len(report.removed)} removed, {len(report.failed)} failed"
                + (f" ({report.ignored} file{'s' if report.ignored > 1 else ''} of other types ignored)" if report.ignored else "")
                + f"; {report.chunks} chunks written "
                f"in {report.seconds:.1f} s ({rate:.0f} chunks/s); the knowledge base holds {kb.count()} chunks."
            )
        if report.flagged and not as_json:
            common.notice(f"{report.flagged} chunk{'s' if report.flagged > 1 else ''} hold text addressed to AI systems; it is kept as data, "
                          "never quoted as evidence or acted on. `lantern kb list --flagged` shows where and why.")
        if report.interrupted:
            common.error("interrupted; what was written is kept. Run the same command again to finish.")
            raise typer.Exit(130)
        named = report.named_failures(paths)
        if named:
            # Exit non-zero so `lantern ingest typo/ && lantern ask ...` stops; what could be ingested was.
            if len(named) == 1:
                common.error(f"{common.display_path(named[0][0])} could not be ingested ({named[0][1]}); the rest was. Fix the path or leave it out.")
            else:
                common.error(f"{len(named)} of the paths given could not be ingested (listed above); the rest was. Fix them or leave them out.")
            raise typer.Exit(1)

    @app.command(rich_help_panel="Knowledge base")
    def search(
        query: str = typer.Argument(..., help="What to look for."),
        k: int = typer.Option(None, "-k", help="How many results (default: the top_k setting)."),
        mode: str = typer.Option(None, "--mode", help="hybrid (default), vector or text."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list of results."),
    ) -> None:
        """Search the knowledge base: ranked passages with their source, line span and score.

        Example: `lantern search "exit gate" -k 3 --json`
        """
        from lantern.errors import LanternError
        from lantern.knowledge import KnowledgeBase

        if mode not in (None, "hybrid", "vector", "text"):
            raise LanternError(f"--mode {mode!r}: use hybrid, vector or text.")
        kb = KnowledgeBase.open(common.settings())
        kb.queries_without_torch = True  # one query, then exit: numpy beats importing torch
        if kb.count() == 0:
            raise LanternError("the knowledge base is empty; add documents with `lantern ingest PATH`.")
        notices: list[str] = []
        hits = kb.search(query, k, mode, notices=notices)
        for line in notices:
            common.notice(f"note: {line}")
        if as_json:
            common.print_json([hit.model_dump() for hit in hits])
            return
        if not hits:
            hint = " (text search needs a word of the query in a passage; try --mode hybrid)" if mode == "text" else ""
            print(f"No passage matches {query!r}{hint}.")
        for rank, hit in enumerate(hits, 1):
            where = f"{common.display_path(hit.source)}:{hit.start_line}-{hit.end_line}"
            print(f"{rank}. {where}  score {hit.score:.4f}" + (f"  [{hit.heading}]" if hit.heading else ""))
            for line in hit.text.splitlines()[:6]:
                print(f"   {line}")
            for flag in hit.flags:
                print(f"   ! flagged {_flag_where(hit, flag)}: {flag.reason}")
            print()

    @kb_app.command("list")
    def kb_list(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
                flagged_only: bool = typer.Option(False, "--flagged", help="Only files holding text flagged as instructions to AI systems.")) -> None:
        """List ingested files with their chunk counts, and any text in them flagged as instructions to AI systems.

        Example: `lantern kb list --flagged`
        """
        from lantern.knowledge import KnowledgeBase

        kb = KnowledgeBase.open(common.settings(), say=common.notice)
        files = kb.files()
        flags_of: dict[str, list] = {}
        for chunk in kb.flagged():
            for flag in chunk.flags:
                flags_of.setdefault(chunk.source, []).append((chunk, flag))
        if flagged_only:
            files = [f for f in files if f.path in flags_of]
        if as_json:
            common.print_json([f.model_dump() | {"flagged": [{"start_line": _flag_lines(c, fl)[0], "end_line": _flag_lines(c, fl)[1],
                                                              "reason": fl.reason, "kind": fl.kind, "text": c.text[fl.start:fl.end]}
                                                             for c, fl in flags_of.get(f.path, [])]} for f in files])
            return
        if not files:
            print("No ingested text is flagged as instructions to AI systems." if flagged_only
                  else "The knowledge base is empty; add documents with `lantern ingest PATH`.")
        for f in files:
            print(f"{f.n_chunks:6d} chunks  {f.size / 1024:8.1f} KiB  {f.format:8s}  {common.display_path(f.path)}")
            for chunk, flag in flags_of.get(f.path, []):
                quoted = " ".join(chunk.text[flag.start:flag.end].split())
                print(f"        ! flagged {_flag_where(chunk, flag)}: {flag.reason}: {quoted[:100]!r}")

    @kb_app.command("rm")
    def kb_rm(path: str = typer.Argument(..., help="A file or folder previously ingested.")) -> None:
        """Remove a file (or every file under a folder) from the knowledge base. Files on disk are untouched."""
        from lantern.knowledge import KnowledgeBase

        removed = KnowledgeBase.open(common.settings()).remove(path)
        print(f"removed {len(removed)} file(s) from the knowledge base.")

    app.add_typer(kb_app, name="kb", rich_help_panel="Knowledge base")
