"""`lantern eval`: run an evaluation suite (`lantern eval --suite NAME ...`) and compare runs
(`lantern eval compare`). Parsing and printing only; the work is in lantern.eval."""

from __future__ import annotations

import typer

from lantern.commands import common


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(invoke_without_command=True, rich_markup_mode="markdown", add_completion=False)

    @eval_app.callback()
    def run(
        ctx: typer.Context,
        suite: str = typer.Option(None, "--suite", help="golden, gsm8k, math500, bbh, wice, climate-fever, bfcl-simple, bfcl-multiple or pubmedqa."),
        backend: str = typer.Option(None, "--backend", help="ouro (default), hf or openai."),
        model: str = typer.Option(None, "--model", help="ouro: a snapshot folder or model name; hf: a transformers folder; openai: the endpoint's model name."),
        endpoint: str = typer.Option(None, "--endpoint", help="An OpenAI-compatible base URL (sets --backend openai), e.g. http://127.0.0.1:8000/v1."),
        mode: str = typer.Option(None, "--mode", help="deep or fast (ouro)."),
        limit: int = typer.Option(None, "--limit", min=1, help="Only the first N items of the split."),
        split: str = typer.Option("test", "--split", help="dev (first half: tune here) or test (second half: report here)."),
        resume: bool = typer.Option(False, "--resume", help="Continue the newest unfinished run of this suite, split, backend, model and mode."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the headline metric as `accuracy`, n, the other metrics, the records' path."),
        data: str = typer.Option(None, "--data", help="The shared eval data folder (default: the eval_data setting, else ../shared/eval)."),
    ) -> None:
        """Run an evaluation suite; each run appends a record to LANTERN_HOME/eval/leaderboard.jsonl.

        Example: `lantern eval --suite gsm8k --model ouro-1.4b --mode fast --limit 100`, then
        `lantern eval --suite gsm8k --model ouro-1.4b --mode deep --limit 100` and `lantern eval compare --suite gsm8k`.
        Per-item records go to LANTERN_HOME/eval/runs/ as they finish; `--resume` continues an interrupted run.
        """
        if ctx.invoked_subcommand is not None:
            return
        from lantern.errors import LanternError
        from lantern.eval import leaderboard, runner
        from lantern.eval.suites import SUITES, EvalContext, find_data

        if suite is None:
            raise LanternError(f"--suite is required; suites: {', '.join(SUITES)} (or `lantern eval compare`).")
        if suite not in SUITES:
            raise LanternError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}.")
        if split not in ("dev", "test"):
            raise LanternError(f"--split must be dev or test, not {split!r}.")
        if endpoint and backend not in (None, "openai"):
            raise LanternError("--endpoint is an OpenAI-compatible server: it goes with --backend openai (or no --backend).")
        chosen = SUITES[suite]
        settings = common.settings(backend="openai" if endpoint else backend, model=model, mode=mode, openai_base_url=endpoint)
        if chosen.uses_model:
            if suite not in ("golden", "pubmedqa") or model is not None:
                from lantern.loop.run import require_model

                require_model(settings)  # a missing model is one line before anything is written
        elif model or backend or endpoint or mode:
            common.notice(f"note: {suite} runs the verifier alone; --model, --backend, --endpoint and --mode are not used.")
        folder, searched = find_data(data or settings.eval_data)
        context = EvalContext(settings, folder, searched, require_model=model is not None)
        try:
            result = runner.run(chosen, context, split, limit=limit, resume=resume)
        except KeyboardInterrupt:
            again = f"lantern eval --suite {suite} --split {split}" + (f" --limit {limit}" if limit else "") + " ... --resume"
            common.error(f"interrupted; the items finished so far are kept: `{again}` (same backend, model and mode) continues the run.")
            raise typer.Exit(130)
        entry = result.entry
        if entry.get("backend_used") == "extractive":
            common.notice(f"note: the reasoning model {settings.model} is not installed, so {suite} was answered extractively (quoting "
                          f"evidence sentences, no model, no tools); pass --model to evaluate a model.")
        if resume and not result.resumed:
            common.notice(f"note: there was no unfinished {suite} run of this split, backend, model and mode to resume; this was a new run.")
        if as_json:
            metrics = entry["metrics"]
            common.print_json({
                "suite": entry["suite"], "split": entry["split"], "headline": entry["headline"], "accuracy": entry["accuracy"],
                "n": entry["n"], "metrics": {k: v["value"] for k, v in metrics.items()},
                "ci": {k: v["ci"] for k, v in metrics.items()}, "backend": entry.get("backend_used") or entry["backend"],
                "model": entry["model"], "mode": entry["mode"], "seconds": entry["seconds"], "run_id": entry["run_id"],
                "records": entry["records"], "resumed_items": result.resumed_items,
                "leaderboard": str(runner.leaderboard_path(settings)), "commit": entry["commit"], "machine": entry["machine"],
            })
            return
        leaderboard.run_table(entry)
        common.notice(f"records: {entry['records']}" + (f" ({result.resumed_items} items from the interrupted run)" if result.resumed_items else ""))

    @eval_app.command()
    def compare(
        suite: str = typer.Option(None, "--suite", help="Only this suite (default: every suite on the leaderboard)."),
        split: str = typer.Option(None, "--split", help="Only this split (dev or test)."),
        as_json: bool = typer.Option(False, "--json", help="Print the compared runs' records as JSON instead of tables."),
    ) -> None:
        """Show runs side by side: the newest run of each backend, model and mode, every metric with its 95% interval.

        Example: `lantern eval compare --suite gsm8k --split test`.
        """
        from lantern.errors import LanternError
        from lantern.eval import leaderboard, runner

        settings = common.settings()
        entries = leaderboard.read(runner.leaderboard_path(settings))
        if not entries:
            raise LanternError(f"no runs yet in {runner.leaderboard_path(settings)}; run `lantern eval --suite NAME` first.")
        groups = leaderboard.latest(entries, suite, split)
        if not groups:
            raise LanternError(f"no runs of suite {suite!r}" + (f" on split {split}" if split else "") + " on the leaderboard.")
        if as_json:
            common.print_json([{"suite": s, "split": p, "runs": runs} for (s, p), runs in groups.items()])
            return
        leaderboard.compare(entries, suite, split)

    app.add_typer(eval_app, name="eval", rich_help_panel="Measure")
