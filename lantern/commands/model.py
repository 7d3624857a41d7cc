"""`lantern model pull|list|path` and `lantern bench`: reasoning-model files and speed."""

from __future__ import annotations

import typer

from lantern.commands import common

model_app = typer.Typer(help="Download, list and locate reasoning models.", no_args_is_help=True)


@model_app.command("pull")
def pull(name: str = typer.Argument(..., help="ouro-1.4b, ouro-1.4b-thinking, ouro-2.6b, ouro-2.6b-thinking or a HF id.")) -> None:
    """Download a model into the Hugging Face cache (the only command that goes online).

    Example: `lantern model pull ouro-1.4b`
    """
    from lantern.runtime.locate import pull as pull_snapshot

    path = pull_snapshot(name)
    typer.echo(str(path))


@model_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the known Ouro models and whether their weights are on this machine."""
    from lantern.runtime.locate import SHORT_NAMES, locate

    rows = []
    for short, repo_id in SHORT_NAMES.items():
        found = locate(short)
        rows.append({"name": short, "repo_id": repo_id, "path": str(found.path) if found.path else None})
    if as_json:
        common.print_json(rows)
        return
    for row in rows:
        status = row["path"] or f"not downloaded (lantern model pull {row['name']})"
        typer.echo(f"{row['name']:<20} {row['repo_id']:<30} {status}")


@model_app.command("path")
def path(name: str = typer.Argument(None, help="Model reference; default: the configured model.")) -> None:
    """Print the local snapshot directory of a model, or say where it was looked for."""
    from lantern.runtime.locate import require

    typer.echo(str(require(name or common.settings().model)))


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model", rich_help_panel="Models")

    @app.command(rich_help_panel="Measure")
    def bench(
        model: str = typer.Option(None, "--model", help="Model name, HF id or snapshot directory (default: the model setting)."),
        shape: str = typer.Option(None, "--shape", help="Benchmark a random checkpoint of this shape instead: 1.4b, 2.6b, small, tiny."),
        prompt_len: int = typer.Option(128, "--prompt-len", min=1),
        new_tokens: int = typer.Option(32, "--new-tokens", min=2),
        mode: str = typer.Option("fast", "--mode", help="fast, deep, or both (side by side in one run)."),
        quant: str = typer.Option(None, "--quant", help="Weight-only quantization: none, int8 or int4 (default: the quant setting); also reports top-1 agreement with the unquantized model, measured in a separate process. A list (none,int8,int4) compares them side by side in one run."),
        int8: bool = typer.Option(False, "--int8", help="Deprecated: the same as --quant int8."),
        gate_bias: float = typer.Option(0.0, "--gate-bias", help="Add to the exit gate's bias (positive: earlier exits) to measure DEEP savings on untrained weights."),
        threshold: float = typer.Option(None, "--exit-threshold", help="Q-exit threshold (default: the exit_threshold setting)."),
        dtype: str = typer.Option(None, "--dtype", help="bfloat16, float16 or float32 (default: the dtype setting)."),
        threads: int = typer.Option(None, "--threads", min=0, help="CPU threads; 0 chooses by measurement (default: the threads setting)."),
        rounds: int = typer.Option(3, "--rounds", min=1, help="With --mode both: FAST/DEEP pairs; the speed-up is their median."),
        profile: bool = typer.Option(False, "--profile", help="Also print where a decoded token's time goes (matrix-vector products, attention, norms, exit gate, Python)."),
        agreement: bool = typer.Option(True, "--agreement/--no-agreement", help="With --quant: measure top-1 agreement (a separate process that loads the unquantized model)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Benchmark the LoopLM runtime: decode/prefill tok/s, exit depth, bytes per token and GB/s against the machine's read bandwidth and GEMV kernels measured in the same run, memory.

        Example: `lantern bench --shape 1.4b --prompt-len 128 --new-tokens 32 --mode both --gate-bias 2 --json`;
        `lantern bench --shape 1.4b --quant int4 --profile`
        """
        from lantern.errors import LanternError
        from lantern.runtime import bench as runtime_bench
        from lantern.runtime.quantize import MODES

        if mode not in ("fast", "deep", "both"):
            raise LanternError(f"--mode {mode!r}: use fast, deep or both.")
        compared = quant.split(",") if quant else []
        if any(q not in MODES for q in compared) or len(set(compared)) < len(compared):
            raise LanternError(f"--quant {quant!r}: use none, int8 or int4, or a list of them such as none,int8,int4.")
        if len(compared) > 1 and mode == "both":
            raise LanternError("--quant with several modes compares them at one --mode (fast or deep); run --mode both once per quant.")
        if int8:
            common.notice("note: --int8 is deprecated; use --quant int8.")
        settings = common.settings(quant="int8" if int8 and quant is None else (quant if len(compared) == 1 else None))
        result = runtime_bench.run(
            None if shape else (model or settings.model), shape, prompt_len, new_tokens, mode, quant if len(compared) > 1 else settings.quant, gate_bias,
            settings.exit_threshold if threshold is None else threshold, settings.device, dtype or settings.dtype, settings.home,
            settings.threads if threads is None else threads, rounds, profile, agreement,
        )
        if as_json:
            print(__import__("json").dumps(result))
        else:
            print("\n".join(runtime_bench.summary(result)))
