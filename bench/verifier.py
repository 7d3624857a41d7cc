"""Verifier benchmark: WiCE (claim vs its article) and Climate-FEVER (claim vs one sentence).

Tune on the dev halves, report on the test halves (../shared/eval/README.md). Side by side in one
run: the naive baseline (logistic regression on four cheap features: best and top-3 MiniLM
similarity, word overlap, share of numbers found, fitted on the WiCE dev half) and Lantern's
verifier (its `relevant` factor fitted on the Climate-FEVER dev half, its `complete` factor on the
WiCE dev half; the supported threshold is the min_support setting's default, chosen on dev).
`--fit` writes the fitted weights to lantern/verify/verifier_weights.json; `--cache` keeps the
MiniLM embeddings in bench/.cache so a re-run takes seconds instead of minutes. `--judge FOLDER`
adds a trained cross-encoder (`lantern verifier train`) beside them: alone (P(supported) of a
WiCE claim = its best window of the article, MiniCheck's rule), and combined with Lantern's
verifier by a logistic regression over both confidences, fitted on the dev halves; thresholds are
chosen on the dev halves.

    .venv/bin/python bench/verifier.py [--fit] [--cache] [--judge FOLDER] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lantern.embedding import load_embedder  # noqa: E402
from lantern.eval import metrics  # noqa: E402
from lantern.eval.metrics import ece  # noqa: E402
from lantern.settings import Settings  # noqa: E402
from lantern.records import Verdict  # noqa: E402
from lantern.verify.copies import copied_sentence, settled  # noqa: E402
from lantern.verify.support import FEATURE_SIGNS, SupportModel, WEIGHTS_PATH, claim_parts, content_words, fit_logistic, numbers, support_features, verdict_of  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


class CachedEmbed:
    """MiniLM embeddings, computed once per distinct text (`warm` embeds a whole set in one call)."""

    def __init__(self, cache_file: Path | None = None) -> None:
        self.model = load_embedder("all-MiniLM-L6-v2")
        self.cache: dict[str, np.ndarray] = {}
        self.cache_file = cache_file
        if cache_file and cache_file.exists():
            data = np.load(cache_file, allow_pickle=False)
            self.cache = dict(zip(data["texts"].tolist(), data["vectors"]))

    def warm(self, texts) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            vecs = self.model.encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            self.cache.update(zip(missing, vecs))
            if self.cache_file:
                self.cache_file.parent.mkdir(parents=True, exist_ok=True)
                np.savez(self.cache_file, texts=np.array(list(self.cache)), vectors=np.stack(list(self.cache.values())))

    def __call__(self, texts):
        self.warm(texts)
        return np.stack([self.cache[t] for t in texts])


def embed_fn(cache: bool):
    return CachedEmbed(ROOT / "bench" / ".cache" / "minilm-verifier.npz" if cache else None)


def baseline_features(claim, claim_vec, sentences, sentence_vecs):
    sims = sentence_vecs @ claim_vec
    top = np.sort(sims)[::-1][:3]
    words, evidence_words = set(content_words(claim)), set(content_words(" ".join(sentences)))
    overlap = len(words & evidence_words) / len(words) if words else 1.0
    nums = numbers(claim)
    share = len(nums & numbers(" ".join(sentences))) / len(nums) if nums else 1.0
    return np.array([top[0], top.mean(), overlap, share])


def featurize(embed, claim, sentences):
    parts = claim_parts(claim)
    vecs = embed([claim] + parts + sentences)
    claim_vec, part_vecs, sentence_vecs = vecs[0], vecs[1 : 1 + len(parts)], vecs[1 + len(parts) :]
    ours = support_features(claim, claim_vec, part_vecs, sentences, sentence_vecs).features
    return ours, baseline_features(claim, claim_vec, sentences, sentence_vecs), copy_kind(claim, sentences)


def copy_kind(claim, sentences):
    """The verifier's first layer: how the claim copies one of the sentences, or None."""
    copy = copied_sentence(claim, sentences)
    return copy[1] if copy else None


def with_copies(confidence, kinds):
    """The confidences, with those a copy settles replaced as the verifier replaces them."""
    return np.array([settled(kind)[0] if kind else c for c, kind in zip(confidence, kinds)])


def balanced_accuracy(y, pred):
    """Percent; the definition is lantern.eval.metrics's, shared with `lantern eval`."""
    return 100 * metrics.balanced_accuracy(y, pred)


def macro_f1(gold, pred, labels):
    """Percent; the definition is lantern.eval.metrics's, shared with `lantern eval`."""
    return 100 * metrics.macro_f1(gold, pred, labels)


def wice(embed):
    rows = [json.loads(line) for line in (EVAL / "wice" / "claim_test.jsonl").open()]
    half = len(rows) // 2
    embed.warm(t for row in rows for t in [row["claim"], *claim_parts(row["claim"]), *row["evidence"]])
    ours, base, copies, y = [], [], [], []
    for row in rows:
        o, b, c = featurize(embed, row["claim"], row["evidence"])
        ours.append(o), base.append(b), copies.append(c), y.append(int(row["label"] == "supported"))
    return np.array(ours), np.array(base), copies, np.array(y), half


def climate_fever(embed):
    claims = [json.loads(line) for line in (EVAL / "climate_fever" / "climate-fever.jsonl").open()]
    half = len(claims) // 2
    embed.warm(t for c in claims for t in [c["claim"], *claim_parts(c["claim"]), *(e["evidence"] for e in c["evidences"])])
    feats, copies, labels, split = [], [], [], []
    for index, claim in enumerate(claims):
        for ev in claim["evidences"]:
            o, _, c = featurize(embed, claim["claim"], [ev["evidence"]])
            feats.append(o), copies.append(c), labels.append(ev["evidence_label"]), split.append(index >= half)
    return np.array(feats), copies, labels, np.array(split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="write the fitted weights to lantern/verify/verifier_weights.json")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cache", action="store_true", help="keep MiniLM embeddings in bench/.cache to re-run quickly")
    parser.add_argument("--judge", type=Path, help="a trained cross-encoder folder to measure beside the verifier")
    args = parser.parse_args()
    embed = embed_fn(args.cache)
    started = time.perf_counter()
    ours, base, wice_copies, y, half = wice(embed)
    cf_feats, cf_copies, cf_labels, cf_test = climate_fever(embed)
    cf_supports = np.array([label == "SUPPORTS" for label in cf_labels], dtype=int)
    cal = SupportModel(relevant=fit_logistic(cf_feats[~cf_test], cf_supports[~cf_test], signs=FEATURE_SIGNS),
                       complete=fit_logistic(ours[:half], y[:half], signs=FEATURE_SIGNS))
    cal_base = fit_logistic(base[:half], y[:half])
    p_ours, p_base = with_copies(cal.confidence(ours[half:]), wice_copies[half:]), cal_base.confidence(base[half:])
    threshold = Settings.model_fields["min_support"].default
    result = {
        "threshold": threshold,
        "wice_test_claims": int(len(y) - half),
        "wice_balanced_accuracy": round(balanced_accuracy(y[half:], (p_ours >= threshold).astype(int)), 1),
        "wice_baseline_balanced_accuracy": round(balanced_accuracy(y[half:], (p_base >= 0.5).astype(int)), 1),
        "wice_ece": round(ece(y[half:], p_ours), 3),
        "wice_test_claims_settled_as_copies": sum(kind is not None for kind in wice_copies[half:]),
        "wice_dev_balanced_accuracy": round(balanced_accuracy(y[:half], (with_copies(cal.confidence(ours[:half]), wice_copies[:half]) >= threshold).astype(int)), 1),
    }
    conf = with_copies(cal.confidence(cf_feats), cf_copies)
    label_of = {Verdict.supported: "SUPPORTS", Verdict.contradicted: "REFUTES", Verdict.unsupported: "NOT_ENOUGH_INFO"}
    pred = [label_of[settled(kind)[1] if kind else verdict_of(c, f, threshold)] for c, f, kind in zip(conf, cf_feats, cf_copies)]
    gold_test = [label for label, t in zip(cf_labels, cf_test) if t]
    pred_test = [p for p, t in zip(pred, cf_test) if t]
    refutes = [p == "REFUTES" for g, p in zip(gold_test, pred_test) if g == "REFUTES"]
    cf_binary = np.array([g == "SUPPORTS" for g in gold_test], dtype=int)
    result |= {
        "climate_fever_test_pairs": len(gold_test),
        "climate_fever_test_pairs_settled_as_copies": sum(kind is not None for kind, t in zip(cf_copies, cf_test) if t),
        "climate_fever_macro_f1": round(macro_f1(gold_test, pred_test, ["SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO"]), 1),
        "climate_fever_refutes_recall": round(100 * sum(refutes) / max(len(refutes), 1), 1),
        "climate_fever_supports_balanced_accuracy": round(balanced_accuracy(cf_binary, (conf[cf_test] >= threshold).astype(int)), 1),
        "climate_fever_ece": round(ece(cf_binary, conf[cf_test]), 3),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
    }
    if args.judge:
        result["judge"] = judge_figures(args.judge, y, half, with_copies(cal.confidence(ours), wice_copies), cf_supports, conf, cf_test)
    if args.fit:
        cal.save(WEIGHTS_PATH, {"relevant": "Climate-FEVER dev half (pairs of the first 767 claims), SUPPORTS vs rest",
                                "complete": "WiCE dev half (first 179 claims), supported vs rest", "test": result})
        result["weights"] = str(WEIGHTS_PATH.relative_to(ROOT))
    print(json.dumps(result, indent=None if args.json else 1))


def judge_figures(folder: Path, y, half, ours_wice, cf_supports, ours_cf, cf_test) -> dict:
    """The trained cross-encoder alone and combined with the verifier's confidence, each with its
    threshold chosen on the dev half (balanced accuracy), reported on the test halves."""
    from lantern.verify.train import TrainedVerifier

    judge = TrainedVerifier(folder)
    started = time.perf_counter()
    rows = [json.loads(line) for line in (EVAL / "wice" / "claim_test.jsonl").open()]
    p_wice = np.array([judge.best_window(row["claim"], row["evidence"]) for row in rows])
    claims = [json.loads(line) for line in (EVAL / "climate_fever" / "climate-fever.jsonl").open()]
    pairs = [(c["claim"], e["evidence"]) for c in claims for e in c["evidences"]]
    p_cf = np.array(judge.scores([c for c, _ in pairs], [e for _, e in pairs]))
    seconds = time.perf_counter() - started

    def dev_threshold(labels, scores):
        candidates = np.arange(0.02, 0.99, 0.02)
        return float(max(candidates, key=lambda t: balanced_accuracy(labels, (scores >= t).astype(int))))

    def combined(p_judge, p_ours, labels, dev):
        features = np.column_stack([np.log(p_judge + 1e-6) - np.log(1 - p_judge + 1e-6), np.log(p_ours + 1e-6) - np.log(1 - p_ours + 1e-6)])
        model = fit_logistic(features[dev], labels[dev])
        return model.confidence(features)

    out = {"folder": str(folder), "pairs_scored": len(rows) + len(pairs), "seconds": round(seconds, 1)}
    dev_w, dev_c = np.arange(len(y)) < half, ~cf_test
    for name, wice_scores, cf_scores in (("alone", p_wice, p_cf),
                                         ("combined", combined(p_wice, ours_wice, y, dev_w), combined(p_cf, ours_cf, cf_supports, dev_c))):
        tw, tc = dev_threshold(y[dev_w], wice_scores[dev_w]), dev_threshold(cf_supports[dev_c], cf_scores[dev_c])
        out[name] = {
            "wice_threshold": tw,
            "wice_dev_balanced_accuracy": round(balanced_accuracy(y[dev_w], (wice_scores[dev_w] >= tw).astype(int)), 1),
            "wice_balanced_accuracy": round(balanced_accuracy(y[~dev_w], (wice_scores[~dev_w] >= tw).astype(int)), 1),
            "wice_ece": round(ece(y[~dev_w], wice_scores[~dev_w]), 3),
            "climate_fever_threshold": tc,
            "climate_fever_dev_supports_balanced_accuracy": round(balanced_accuracy(cf_supports[dev_c], (cf_scores[dev_c] >= tc).astype(int)), 1),
            "climate_fever_supports_balanced_accuracy": round(balanced_accuracy(cf_supports[cf_test], (cf_scores[cf_test] >= tc).astype(int)), 1),
            "climate_fever_ece": round(ece(cf_supports[cf_test], cf_scores[cf_test]), 3),
        }
    return out


if __name__ == "__main__":
    main()
