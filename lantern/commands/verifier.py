"""`lantern verifier train`: fine-tune Lantern's own claim verifier (verify/train.py) on a pairs file."""

from __future__ import annotations

from pathlib import Path

import typer

from lantern.commands import common

verifier_app = typer.Typer(help="Lantern's own claim verifier: train the cross-encoder.", no_args_is_help=True)


@verifier_app.command("train")
def train_command(
    pairs: Path = typer.Argument(..., help="JSONL of claim, evidence, label (supported|not_supported), e.g. from bench/verifier_data.py."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints while training, the model in OUT/model at the end."),
    epochs: int = typer.Option(2, "--epochs", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    max_length: int = typer.Option(256, "--max-length", min=16, help="Tokens of evidence plus claim."),
    learning_rate: float = typer.Option(3e-5, "--learning-rate"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads; part of what makes a run reproducible byte for byte."),
) -> None:
    """Fine-tune the MiniLM cross-encoder on PAIRS; run it again with the same OUT to resume.

    Example: `lantern verifier train data/verifier_train.jsonl --out runs/verifier`
    """
    from lantern.errors import LanternError
    from lantern.verify.train import TrainOptions, read_pairs, train

    try:
        rows = read_pairs(pairs)
    except (OSError, ValueError) as exc:
        raise LanternError(f"cannot read the training pairs: {exc}") from exc
    options = TrainOptions(epochs=epochs, batch_size=batch_size, max_length=max_length, learning_rate=learning_rate, seed=seed, threads=threads)
    try:
        model = train(rows, out, options)
    except ValueError as exc:
        raise LanternError(str(exc)) from exc
    print(f"trained on {len(rows)} pairs; the model is in {model} (use it with --set verifier_model={model})")


def register(app: typer.Typer) -> None:
    app.add_typer(verifier_app, name="verifier")
