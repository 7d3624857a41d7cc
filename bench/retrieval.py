"""Retrieval benchmark for the knowledge base, next to LanceDB's naive hybrid search, in one run.

Datasets from ../shared/eval (tune on the dev half, report the test half):
- Climate-FEVER: all distinct evidence sentences pooled; each claim with SUPPORTS/REFUTES evidence
  asks for one of those sentences in the top k (recall@1/5/10).
- WiCE: each claim against its own article's sentences: share of gold supporting sentences in the top 10.
- PubMedQA: each question against all 1000 abstracts: recall@1/5 of its own abstract.
Naive baseline: one LanceDB table per corpus with default full-text index and MiniLM vectors,
`query_type="hybrid"` with LanceDB's RRFReranker. Lantern: `lantern.knowledge.search` over a
`Store` (its FTS configuration, weighted RRF, candidate pools, titles as headings).

    .venv/bin/python bench/retrieval.py [--json] [--split dev|test]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")

from lantern.embedding import load_embedder, load_query_embedder  # noqa: E402
from lantern.eval.metrics import recall_at_k, share_at_k  # noqa: E402
from lantern.knowledge.ingest import chunk_id, embedding_input  # noqa: E402
from lantern.knowledge.search import search  # noqa: E402
from lantern.knowledge.store import Store  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


class Embedder:
    """Documents through the float32 model; `query` is Lantern's own single-query path."""

    def __init__(self) -> None:
        self.model = load_embedder("all-MiniLM-L6-v2")
        self.query_model = load_query_embedder("all-MiniLM-L6-v2")

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def query(self, texts: list[str]) -> np.ndarray:
        return self.query_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def build_store(folder: Path, docs: list[dict], embed, vectors=None) -> Store:
    """A Lantern store holding `docs` (dicts with id, source, heading, text, line) as one-line chunks."""
    store = Store(folder)
    dim = 384
    table = store.create_chunks_table("all-MiniLM-L6-v2", dim)
    if vectors is None:
        vectors = embed([embedding_input(d["heading"], d["text"]) for d in docs])
    rows = [
        {"chunk_id": d["id"], "source": d["source"], "file_hash": "bench", "heading": d["heading"], "text": d["text"],
         "search_text": embedding_input(d["heading"], d["text"]), "start_line": d["line"], "end_line": d["line"], "vector": list(map(float, v))}
        for d, v in zip(docs, vectors)
    ]
    for start in range(0, len(rows), 5000):
        table.add(rows[start : start + 5000])
    store.make_live(table, "all-MiniLM-L6-v2", dim)
    store.refresh_indexes()
    return store


def build_naive(folder: Path, docs: list[dict], embed, vectors=None):
    import lancedb

    db = lancedb.connect(str(folder))
    if vectors is None:
        vectors = embed([d["text"] for d in docs])
    table = db.create_table("naive", data=[{"id": d["id"], "source": d["source"], "text": d["text"], "vector": list(map(float, v))} for d, v in zip(docs, vectors)])
    table.create_fts_index("text")
    return table


def naive_search(table, embed, query: str, k: int, where: str | None = None) -> list[str]:
    from lancedb.rerankers import RRFReranker

    builder = table.search(query_type="hybrid").vector(list(map(float, embed([query])[0]))).text(query).rerank(RRFReranker()).limit(k)
    if where:
        builder = builder.where(where, prefilter=True)
    return [row["id"] for row in builder.select(["id"]).to_list()]


def lantern_search(store, embed, query: str, k: int, where: str | None = None) -> list[str]:
    return [hit.chunk_id for hit in search(store, embed.query, query, k, "hybrid", where=where)]


def halves(items: list, split: str) -> list:
    half = len(items) // 2
    return items[:half] if split == "dev" else items[half:]


def climate_fever(embed, split: str, work: Path) -> dict:
    claims = [json.loads(line) for line in (EVAL / "climate_fever" / "climate-fever.jsonl").open()]
    sentences: dict[str, dict] = {}
    for claim in claims:
        for ev in claim["evidences"]:
            # Where a sentence sat in its article is unknown, so no two are placed near each other.
            line = 10 * len(sentences) + 1
            sentences.setdefault(ev["evidence"], {"id": f"s{len(sentences)}", "source": ev["article"], "heading": ev["article"], "text": ev["evidence"], "line": line})
    docs = list(sentences.values())
    queries = []
    for claim in halves(claims, split):
        gold = {sentences[ev["evidence"]]["id"] for ev in claim["evidences"] if ev["evidence_label"] in ("SUPPORTS", "REFUTES")}
        if gold:
            queries.append((claim["claim"], gold))
    store, naive = build_store(work / "cf", docs, embed), build_naive(work / "cf-naive", docs, embed)
    out = {"pool": len(docs), "claims": len(queries)}
    for name, run in (("lantern", lambda q: lantern_search(store, embed, q, 10)), ("naive", lambda q: naive_search(naive, embed, q, 10))):
        ranked = [run(q) for q, _ in queries]
        for k in (1, 5, 10):
            out[f"{name}_recall@{k}"] = round(recall_at_k(ranked, [gold for _, gold in queries], k), 3)
    return out


def wice(embed, split: str, work: Path) -> dict:
    rows = halves([json.loads(line) for line in (EVAL / "wice" / "claim_test.jsonl").open()], split)
    # Each article as a file with one sentence per line, in the article's order.
    docs = [{"id": f"w{i}-{j}", "source": f"w{i}", "heading": "", "text": s, "line": j + 1} for i, row in enumerate(rows) for j, s in enumerate(row["evidence"])]
    # No headings here, so Lantern's chunk text and the naive row text are the same: embed once.
    sentence_vectors = embed([d["text"] for d in docs])
    store = build_store(work / "wice", docs, embed, sentence_vectors)
    naive = build_naive(work / "wice-naive", docs, embed, sentence_vectors)
    vectors = {d["id"]: v for d, v in zip(docs, sentence_vectors)}
    shares = {"lantern": [], "naive_vector": [], "naive_hybrid": []}
    for i, row in enumerate(rows):
        gold = {f"w{i}-{j}" for group in row["supporting_sentences"] for j in group}
        if not gold:
            continue
        ids = [f"w{i}-{j}" for j in range(len(row["evidence"]))]
        q = embed([row["claim"]])[0]  # the naive baseline embeds queries as LanceDB's default would
        top_vector = [ids[j] for j in np.argsort(-(np.stack([vectors[x] for x in ids]) @ q))[:10]]
        where = f"source = 'w{i}'"
        for name, top in (("lantern", lantern_search(store, embed, row["claim"], 10, where)), ("naive_vector", top_vector),
                          ("naive_hybrid", naive_search(naive, embed, row["claim"], 10, where))):
            shares[name].append(share_at_k(top, gold, 10))
    return {"claims": len(shares["lantern"])} | {f"{name}_gold_in_top10": round(float(np.mean(v)), 3) for name, v in shares.items()}


def pubmedqa(embed, split: str, work: Path) -> dict:
    data = json.loads((EVAL / "pubmedqa" / "ori_pqal.json").read_text())
    docs = [{"id": key, "source": key, "heading": "", "text": " ".join(item["CONTEXTS"]), "line": 1} for key, item in data.items()]
    test_keys = set(json.loads((EVAL / "pubmedqa" / "test_ground_truth.json").read_text()))
    keys = [k for k in data if (k in test_keys) == (split == "test")]
    abstract_vectors = embed([d["text"] for d in docs])  # no headings: one embedding serves both
    store = build_store(work / "pm", docs, embed, abstract_vectors)
    naive = build_naive(work / "pm-naive", docs, embed, abstract_vectors)
    out = {"questions": len(keys)}
    for name, run in (("lantern", lambda q: lantern_search(store, embed, q, 5)), ("naive", lambda q: naive_search(naive, embed, q, 5))):
        ranked = {k: run(data[k]["QUESTION"]) for k in keys}
        for k in (1, 5):
            out[f"{name}_recall@{k}"] = round(recall_at_k([ranked[key] for key in keys], [[key] for key in keys], k), 3)
    return out


def ingestion(embed, split: str, work: Path) -> dict:
    """End-to-end ingest of the 1000 PubMedQA abstracts as files, against raw encode of the same chunks."""
    from lantern.knowledge import KnowledgeBase
    from lantern.knowledge.chunking import chunk_text
    from lantern.settings import load_settings

    data = json.loads((EVAL / "pubmedqa" / "ori_pqal.json").read_text())
    folder = work / "abstracts"
    folder.mkdir()
    for key, item in data.items():
        (folder / f"{key}.txt").write_text("\n\n".join(item["CONTEXTS"]) + "\n")
    settings = load_settings({"home": str(work / "ingest-home")})
    kb = KnowledgeBase.open(settings)
    kb.embed(["warm up"])
    first = kb.ingest([folder])
    again = kb.ingest([folder])
    texts = [embedding_input(c.heading, c.text) for f in sorted(folder.iterdir())
             for c in chunk_text(f.read_text(), "text", settings.chunk_chars, settings.chunk_overlap)]
    started = time.perf_counter()
    kb.embed(texts)
    encode_seconds = time.perf_counter() - started
    return {
        "files": len(first.added), "chunks": first.chunks, "ingest_seconds": round(first.seconds, 2),
        "ingest_chunks_per_s": round(first.chunks / first.seconds, 1),
        "raw_encode_chunks_per_s": round(len(texts) / encode_seconds, 1),
        "ingest_over_encode": round((first.chunks / first.seconds) / (len(texts) / encode_seconds), 3),
        "reingest_unchanged_seconds": round(again.seconds, 3),
        "reingest_speedup": round(first.seconds / again.seconds, 1),
    }


def latency(embed, split: str, work: Path) -> dict:
    """Hybrid query latency over 10k chunks, warm process, query embedding included; CLI start-up."""
    rows = [json.loads(line) for line in (EVAL / "wice" / "claim_test.jsonl").open()]
    docs = [{"id": f"w{i}-{j}", "source": f"w{i}", "heading": "", "text": s, "line": j + 1} for i, row in enumerate(rows) for j, s in enumerate(row["evidence"])][:10_000]
    store = build_store(work / "latency", docs, embed)
    queries = [row["claim"] for row in rows][:200]
    for q in queries[:10]:
        search(store, embed.query, q, 6, "hybrid")
    times = []
    for q in queries:
        started = time.perf_counter()
        search(store, embed.query, q, 6, "hybrid")
        times.append((time.perf_counter() - started) * 1000)
    return {"chunks": store.count(), "queries": len(times), "p50_ms": round(float(np.percentile(times, 50)), 1),
            "p95_ms": round(float(np.percentile(times, 95)), 1)} | query_embedding(queries[:50]) | cli_startup(work)


def query_embedding(queries: list[str]) -> dict:
    """Median ms to embed one query: the warm path (torch, bfloat16 where native) next to the numpy
    path `lantern search` takes to avoid importing torch."""
    medians = {}
    for name, model in (("torch", load_query_embedder("all-MiniLM-L6-v2")),
                        ("numpy", load_query_embedder("all-MiniLM-L6-v2", without_torch=True))):
        model.encode(queries[:3])
        times = []
        for q in queries:
            started = time.perf_counter()
            model.encode([q], normalize_embeddings=True)
            times.append((time.perf_counter() - started) * 1000)
        medians[f"query_embed_ms_{name}"] = round(float(np.median(times)), 2)
    return medians


def cli_startup(work: Path) -> dict:
    """Wall time of whole CLI processes, as a user waits for them: `--version`, and three
    `lantern search` runs over the shipped kb/ (the first also pays for a cold file cache)."""
    cli = [sys.executable, "-m", "lantern", "--home", str(work / "cli-home")]
    subprocess.run(cli + ["ingest", str(ROOT / "kb")], check=True, capture_output=True)

    def seconds(args: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(cli + args, check=True, capture_output=True)
        return round(time.perf_counter() - started, 2)

    return {"cli_version_seconds": seconds(["--version"]),
            "cli_search_seconds": [seconds(["search", "how does the exit gate decide", "--json"]) for _ in range(3)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["dev", "test"], default="test")
    parser.add_argument("--only", choices=["climate_fever", "wice", "pubmedqa", "ingestion", "latency"], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    embed = Embedder()
    result: dict = {"split": args.split, "machine": f"{os.cpu_count()} CPU cores, no GPU"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("climate_fever", climate_fever), ("wice", wice), ("pubmedqa", pubmedqa), ("ingestion", ingestion), ("latency", latency)):
            if args.only and name not in args.only:
                continue
            started = time.perf_counter()
            result[name] = fn(embed, args.split, Path(tmp)) | {"seconds": round(time.perf_counter() - started, 1)}
            print(json.dumps({name: result[name]}), file=sys.stderr)
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
