"""Train the answerability judgement of `lantern.verify.answerable` and write its shipped weights.

Training material: SQuAD 2.0's public TRAINING split (CC BY-SA 4.0), never its dev set, read with
`git show` from a clone or bare mirror given on the command line (commit and path recorded in the
weights). The only copy readable from the project's machines holds the first 10 training articles
(PhongNTDo/guide_train_MRC_transformers @ 631a448d, train-v2.0.json: 4,719 questions), and only
two of them carry SQuAD's own unanswerable questions (348). So beside those, each answerable
question also gives one unanswerable variant, drawn (seeded) from the kinds SQuAD 2.0's writers
used (Rajpurkar et al. 2018) or that retrieval produces:
- `swap`: a name or number of the question replaced by one from another paragraph of the same
  article that this paragraph does not contain (SQuAD's "entity swap");
- `antonym`: first/last, largest/smallest, before/after, ... swapped, when the paragraph lacks the new word;
- `negation`: "not" put after the question's auxiliary, when the paragraph has no negation;
- `removed`: the gold paragraph with every sentence holding an answer taken out (on topic, answer missing);
- `other`: the question beside the same article's paragraph that shares most of its words and
  holds no answer (what retrieval returns when the documents do not say).
Each pair is (question, window of the paragraph around the answer sentence, or the plausible
answer's, or the start). Training: low-rank adapters (rank `RANK`) on every projection of the
base MiniLM-L6, a linear head on the mean-pooled states, binary cross-entropy, AdamW with warm-up
and linear decay, seeded (pairs, shuffling, initial adapters, thread count), so two runs on one
machine write the same bytes.

    .venv/bin/python bench/train_answerable.py /work/.mirror/PhongNTDo+guide_train_MRC_transformers/repo
    .venv/bin/python bench/train_answerable.py MIRROR --epochs 1 --out /tmp/a.safetensors   # elsewhere

The threshold stored with the weights is chosen afterwards on the SQuAD dev questions
(`bench/answerability.py --sweep`) and written with `--threshold`.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lantern.bert_encoder import BertEncoder  # noqa: E402
from lantern.verify.answerable import (ADAPTED, MAX_TOKENS, WEIGHTS_PATH, adapted_weights, base_digest,  # noqa: E402
                                       base_encoder, pooled_logit, window)
from lantern.verify.claims import sentence_spans  # noqa: E402

SQUAD_PATH = "train-v2.0.json"
EXPLORER_COMMIT = "13f82e35b9a1fb9173f863b35f5675030646571e"
EXPLORER_TRAIN = "explore/1.0/train/"
PER_ARTICLE = 12
SEED = 0
RANK = 8
SCALE = 2.0
"""alpha / rank of the adapters (alpha 16 at rank 8)."""
VARIANTS = {"swap": 0.3, "antonym": 0.1, "negation": 0.1, "removed": 0.25, "other": 0.25}
ANTONYMS = dict(pair for a, b in [
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"), ("most", "least"),
    ("earliest", "latest"), ("oldest", "newest"), ("longest", "shortest"), ("best", "worst"), ("before", "after"),
    ("increase", "decrease"), ("increased", "decreased"), ("north", "south"), ("northern", "southern"),
    ("east", "west"), ("eastern", "western"), ("maximum", "minimum"), ("higher", "lower"), ("larger", "smaller"),
    ("older", "younger"), ("major", "minor"), ("above", "below"), ("won", "lost"), ("win", "lose"),
    ("positive", "negative"), ("male", "female"), ("early", "late"), ("beginning", "end"), ("start", "end"),
    ("inside", "outside"), ("legal", "illegal"), ("successful", "unsuccessful"), ("popular", "unpopular"),
    ("more", "fewer")] for pair in ((a, b), (b, a)))
AUXILIARIES = {"is", "was", "are", "were", "can", "could", "will", "would"}
"""Auxiliaries after which "not" reads naturally at the question's second word ("What was not ...")."""
NEGATION = re.compile(r"\b(not|no|never|none|n't|without)\b", re.I)
NAME = re.compile(r"(?<!^)(?<![.?!] )(?<![\w-])([A-Z][a-z]+(?: [A-Z][a-z]+)*|\d[\d,.]*)\b")


def read_explorer(repo: Path, skip: set[str], per_article: int, seed: int = SEED) -> tuple[list[dict], str]:
    """SQuAD's training articles from the explorer pages (answerable questions only), in the SQuAD
    2.0 JSON shape; `per_article` questions drawn (seeded) from each article not in `skip`."""
    git = lambda *a: subprocess.run(["git", "-c", "core.quotepath=off", "-C", str(repo), *a], capture_output=True, text=True, check=True).stdout  # noqa: E731
    rng = random.Random(seed)
    names = sorted(n for n in git("ls-tree", "--name-only", EXPLORER_COMMIT, EXPLORER_TRAIN).split()
                   if n.endswith(".html") and not n.endswith("/index.html"))
    articles = []
    for name in names:
        title = name.rsplit("/", 1)[-1][:-5]
        if title in skip:
            continue
        page = git("show", f"{EXPLORER_COMMIT}:{name}")
        paragraphs = []
        for block in page.split('<div class="para-wrap">')[1:]:
            context = html.unescape(re.search(r"<pre>(.*?)</pre>", block, re.S).group(1))
            qas = []
            for question, body in re.findall(r'class="question">(.*?)</strong>(.*?)(?=class="question"|$)', block, re.S):
                answers = [html.unescape(a).strip() for a in re.findall(r'class="answer">(.*?)</span>', body, re.S)]
                answers = [a for a in answers if a and a in context]
                if answers:
                    qas.append({"question": html.unescape(question).strip(), "is_impossible": False,
                                "answers": [{"text": a, "answer_start": context.index(a)} for a in answers]})
            paragraphs.append({"context": context, "qas": qas})
        articles.append(sampled({"title": title, "paragraphs": paragraphs}, per_article, rng))
    return articles, git("rev-parse", EXPLORER_COMMIT).strip()


def sampled(article: dict, per_article: int, rng: random.Random) -> dict:
    """The article with `per_article` of its questions, drawn with `rng` (all its paragraphs kept)."""
    questions = [(i, j) for i, p in enumerate(article["paragraphs"]) for j in range(len(p["qas"]))]
    chosen = set(rng.sample(questions, min(per_article, len(questions))))
    return {"title": article["title"], "paragraphs": [
        {"context": p["context"], "qas": [qa for j, qa in enumerate(p["qas"]) if (i, j) in chosen]}
        for i, p in enumerate(article["paragraphs"])]}


def read_squad(repo: Path) -> tuple[list[dict], str]:
    git = lambda *a: subprocess.run(["git", "-c", "core.quotepath=off", "-C", str(repo), *a], capture_output=True, text=True, check=True).stdout  # noqa: E731
    return json.loads(git("show", f"HEAD:{SQUAD_PATH}"))["data"], git("rev-parse", "HEAD").strip()


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def sentence_at(text: str, offset: int) -> str:
    return next((text[a:b] for a, b in sentence_spans(text) if a <= offset < b), "")


def variant(kind: str, question: str, context: str, answers: list[str], article: list[str], rng: random.Random) -> tuple[str, str] | None:
    """An unanswerable (question, passage) made from an answerable one, or None when this kind does not apply."""
    words = question.split()
    if kind == "swap":
        spans = [m for m in NAME.finditer(question) if m.group(1) in context]
        if not spans:
            return None
        target = rng.choice(spans)
        is_number = target.group(1)[0].isdigit()
        pool = sorted({m.group(1) for other in article for m in NAME.finditer(other)
                       if m.group(1)[0].isdigit() == is_number and m.group(1) not in context and len(m.group(1)) > 2})
        if not pool:
            return None
        return question[:target.start(1)] + rng.choice(pool) + question[target.end(1):], window(context)
    if kind == "antonym":
        found = [i for i, w in enumerate(words) if w.lower() in ANTONYMS and ANTONYMS[w.lower()] not in norm(context).split()]
        if not found:
            return None
        i = rng.choice(found)
        words[i] = ANTONYMS[words[i].lower()]
        return " ".join(words), window(context, sentence_at(context, context.lower().find(answers[0].lower())))
    if kind == "negation":
        if NEGATION.search(context) or len(words) < 3 or words[1].lower() not in AUXILIARIES:
            return None
        return " ".join(words[:2] + ["not"] + words[2:]), window(context)
    if kind == "removed":
        kept = [context[a:b] for a, b in sentence_spans(context) if not any(norm(x) in norm(context[a:b]) for x in answers)]
        if len(kept) < 2:
            return None
        return question, window(" ".join(kept))
    if kind == "other":
        asked = set(norm(question).split())
        others = [p for p in article if p != context and not any(norm(x) in norm(p) for x in answers)]
        if not others:
            return None
        best = max(others, key=lambda p: len(asked & set(norm(p).split())))
        return question, window(best)
    raise ValueError(kind)


def build_pairs(articles: list[dict], seed: int = SEED) -> tuple[list[tuple[str, str, float, str]], dict]:
    """(question, passage, label, kind) rows; label 1 = answerable."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, float, str]] = []
    for article in articles:
        paragraphs = [p["context"] for p in article["paragraphs"]]
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                question = " ".join(qa["question"].split())
                if qa.get("is_impossible"):
                    plausible = qa.get("plausible_answers") or [{"answer_start": 0}]
                    rows.append((question, window(context, sentence_at(context, plausible[0]["answer_start"])), 0.0, "squad"))
                    continue
                answers = [a["text"] for a in qa["answers"]]
                rows.append((question, window(context, sentence_at(context, qa["answers"][0]["answer_start"])), 1.0, "answer"))
                kinds = list(VARIANTS)
                for kind in rng.choices(kinds, weights=[VARIANTS[k] for k in kinds], k=1) + rng.sample(kinds, len(kinds)):
                    made = variant(kind, question, context, answers, paragraphs, rng)
                    if made:
                        rows.append((*made, 0.0, kind))
                        break
    counts: dict[str, int] = {}
    for *_, kind in rows:
        counts[kind] = counts.get(kind, 0) + 1
    return rows, counts


def train(rows, epochs: int, batch: int, lr: float, seed: int = SEED, log=print, on_epoch=None, max_tokens: int = MAX_TOKENS) -> tuple[dict, dict]:
    """Adapters and head fitted to `rows` ((text, text pair, label, kind) tuples); `on_epoch(epoch, adapters, head)` is called
    after each epoch but the last. Also fits the injection detector's second stage (bench/train_injection.py)."""
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    rng = random.Random(seed)
    encoder = BertEncoder(base_encoder())
    base = {n: t.float() for n, t in encoder.weights.items()}
    adapters: dict[str, torch.Tensor] = {}
    for layer in range(int(encoder.config["num_hidden_layers"])):
        for part in ADAPTED:
            stem = f"encoder.layer.{layer}.{part}"
            out_dim, in_dim = base[stem + ".weight"].shape
            adapters[stem + ".lora_a"] = (torch.randn(RANK, in_dim) / math.sqrt(in_dim)).requires_grad_()
            adapters[stem + ".lora_b"] = torch.zeros(out_dim, RANK, requires_grad=True)
    # a random head (BERT's initial scale): with a zero head no gradient reaches the adapters at first
    head = {"head.weight": (0.02 * torch.randn(encoder.hidden_size)).requires_grad_(), "head.bias": torch.zeros((), requires_grad=True)}
    params = list(adapters.values()) + list(head.values())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    order = [i for _ in range(epochs) for i in rng.sample(range(len(rows)), len(rows))]
    steps = math.ceil(len(order) / batch)
    warm = max(1, steps // 16)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    started, running = time.time(), 0.0
    for step in range(steps):
        picked = [rows[i] for i in order[step * batch:(step + 1) * batch]]
        ids, types, mask = encoder.tokenize([(q, p) for q, p, _, _ in picked], max_tokens)
        logits = pooled_logit(encoder, adapted_weights(base, adapters, SCALE), head, ids, types, mask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([y for _, _, y, _ in picked]))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        running = 0.95 * running + 0.05 * loss.item() if step else loss.item()
        if step % 25 == 0 or step == steps - 1:
            log(f"step {step + 1}/{steps} loss {running:.4f} ({time.time() - started:.0f} s)")
        if on_epoch and (step + 1) * batch % len(rows) < batch and step < steps - 1:
            on_epoch((step + 1) * batch // len(rows), {n: t.detach().clone() for n, t in adapters.items()},
                     {n: t.detach().clone() for n, t in head.items()})
    return ({n: t.detach() for n, t in adapters.items()}, {n: t.detach() for n, t in head.items()})


def write(path: Path, adapters: dict, head: dict, info: dict) -> None:
    from safetensors.torch import save_file

    tensors = {n: t.to(torch.float16).contiguous() for n, t in adapters.items()}
    tensors.update({n: t.float().reshape(t.shape).contiguous() for n, t in head.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"info": json.dumps(info, sort_keys=True)})
    tmp.replace(path)


def set_threshold(path: Path, threshold: float) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as handle:
        info = json.loads((handle.metadata() or {})["info"])
        tensors = {n: handle.get_tensor(n) for n in handle.keys()}
    info["threshold"] = threshold
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"info": json.dumps(info, sort_keys=True)})
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", help="a clone or bare mirror holding SQuAD 2.0's train-v2.0.json at HEAD")
    parser.add_argument("--explorer", default="/work/.mirror/rajpurkar+SQuAD-explorer/repo",
                        help="a clone or bare mirror of rajpurkar/SQuAD-explorer (its history holds the training articles' pages)")
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, help="only the first N pairs (a quick look)")
    parser.add_argument("--pairs", help="also write the training pairs here (JSONL)")
    parser.add_argument("--threshold", type=float, help="only store this decision threshold in --out's weights")
    args = parser.parse_args()
    if args.threshold is not None:
        set_threshold(Path(args.out), args.threshold)
        return
    if not args.repo:
        raise SystemExit("give the SQuAD 2.0 training data's repository (see the docstring)")
    squad2, commit = read_squad(Path(args.repo))
    rng = random.Random(SEED)
    # an article with SQuAD's own unanswerable questions keeps all its questions (the answerable ones
    # beside them, so the article itself says nothing); the others as many as the explorer's
    squad2 = [a if any(qa.get("is_impossible") for p in a["paragraphs"] for qa in p["qas"]) else sampled(a, PER_ARTICLE, rng)
              for a in squad2]
    explorer, explorer_commit = read_explorer(Path(args.explorer), {a["title"] for a in squad2}, PER_ARTICLE)
    articles = squad2 + explorer
    rows, counts = build_pairs(articles)
    rows = rows[: args.limit] if args.limit else rows
    print(f"{len(rows)} pairs from {len(articles)} articles: {counts}", flush=True)
    if args.pairs:
        with open(args.pairs, "w") as out:
            for q, p, y, kind in rows:
                out.write(json.dumps({"question": q, "passage": p, "label": y, "kind": kind}) + "\n")
    info = {"data": f"SQuAD 2.0 train ({SQUAD_PATH} @ {commit}, {len(squad2)} articles) and SQuAD 1.0 train pages "
                    f"(rajpurkar/SQuAD-explorer @ {explorer_commit}:{EXPLORER_TRAIN}, {len(explorer)} more articles, "
                    f"{PER_ARTICLE} questions each)", "pairs": counts,
            "rank": RANK, "scale": SCALE, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": SEED,
            "max_tokens": MAX_TOKENS, "base_sha256": base_digest(base_encoder()), "threshold": 0.5}
    out = Path(args.out)

    def save_epoch(epoch: int, adapters: dict, head: dict) -> None:  # each epoch's weights beside the final ones, to compare
        write(out.with_name(f"{out.stem}.epoch{epoch}{out.suffix}"), adapters, head, {**info, "epochs": epoch})

    adapters, head = train(rows, args.epochs, args.batch, args.lr, log=lambda line: print(line, flush=True), on_epoch=save_epoch)
    write(out, adapters, head, info)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
