"""Training pairs for Lantern's verifier from public TRAINING splits only (issue: a verifier of our own).

Reads each source from a local copy of its GitHub repository at a pinned commit (`git show
COMMIT:PATH`; clone the repositories below into one folder, as `owner+name`, or point `--repos` at
the folder the fetch tool fills) and writes (claim, evidence, label) JSONL for
`lantern verifier train`. Only sets whose licence allows training and whose split is a training
split are read; every pair that touches the evaluation data in ../shared/eval is dropped (same
claim or question, any evidence sentence of 40+ characters found there, or the climate topic,
since Climate-FEVER has no split of its own).

| set | repository @ commit | what | licence |
|---|---|---|---|
| scifact | suzhentxt/healthver_mcqa @ 9a042ef3, `data (1).tar.gz` (the official SciFact release) | claims_train x cited abstracts; SUPPORT -> supported, CONTRADICT and uncited-evidence (NEI) -> not | claims CC BY 4.0, abstracts ODC-By 1.0 |
| checkcovid | posuer/Check-COVID @ 3ae70f8c | train claims x their annotated abstract sentences | MIT |
| citint | jedick/MLE-capstone-project @ 667a8199, data/citint (Citation-Integrity train) | citing sentence x cited abstract; ACCURATE -> supported, NOT_ACCURATE -> not | MIT |
| halueval | RUCAIBox/HaluEval @ b7253db3, generation/qa samples (HotpotQA train questions) | "question Answer: a" x knowledge; right -> supported, hallucinated -> not | MIT (HotpotQA CC BY-SA 4.0) |
| wice_nst | ryokamoi/wice @ ddeb6c18, non_supported_tokens/train | partially supported claims x their supporting sentences -> not | ODC-BY, text CC BY-SA |

    .venv/bin/python bench/verifier_data.py --repos /work/.mirror --out data/verifier_train.jsonl
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lantern.verify.claims import split_sentences  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
MAX_CHARS = 1500

SOURCES = {
    "scifact": ("suzhentxt+healthver_mcqa", "9a042ef320ca794b7bdf756e25f7dd3972c7f6ce", "data (1).tar.gz"),
    "checkcovid": ("posuer+Check-COVID", "3ae70f8cac4df13a3ce56878e20d8e76790e422d", "Check-COVID"),
    "citint": ("jedick+MLE-capstone-project", "667a81990e0613998e8c3856603487269f21e91d", "data/citint"),
    "halueval": ("RUCAIBox+HaluEval", "b7253db3cdaa0ab2c382f92b26b390109174f77e", "generation/qa"),
    "wice_nst": ("ryokamoi+wice", "ddeb6c183665e2a20c5f03c5aa07f03888b9870f", "data/non_supported_tokens"),
}

_CLIMATE = re.compile(r"global warming|climate change", re.I)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in split_sentences(text or "") if s.strip()]


def normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", (text or "").lower()).split())


class Repos:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, source: str, path: str) -> bytes:
        repo, commit, _ = SOURCES[source]
        base = self.folder / repo
        git_dir = next((d for d in (base / "repo" / ".git", base / "repo", base / ".git", base) if (d / "HEAD").exists()), None)
        if git_dir is None:
            sys.exit(f"{base}: no git repository; clone github.com/{repo.replace('+', '/')} there (commit {commit[:8]})")
        done = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], capture_output=True)
        if done.returncode != 0:
            sys.exit(f"cannot read {path} at {commit[:8]} in {git_dir}: {done.stderr.decode().strip()[:200]}")
        return done.stdout


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def window(title: str, parts: list[str], keep: list[int]) -> str:
    """Title and sentences in order within MAX_CHARS, always keeping the sentences in `keep`
    (the annotated rationale), growing around them while they fit."""
    keep = sorted({i for i in keep if 0 <= i < len(parts)})
    if len(" ".join([title, *parts])) <= MAX_CHARS:
        return " ".join([title, *parts]).strip()
    lo, hi = (keep[0], keep[-1]) if keep else (0, 0)
    chosen = list(range(lo, hi + 1))
    if len(" ".join(parts[i] for i in chosen)) > MAX_CHARS - len(title):
        chosen = keep  # the rationale is spread out: only its sentences
    size = len(title) + sum(len(parts[i]) + 1 for i in chosen)
    grew = True
    while grew:
        grew = False
        for candidate in (max(chosen) + 1, min(chosen) - 1):
            if 0 <= candidate < len(parts) and candidate not in chosen and size + len(parts[candidate]) + 1 <= MAX_CHARS:
                chosen.append(candidate)
                size += len(parts[candidate]) + 1
                grew = True
    return " ".join([title, *(parts[i] for i in sorted(chosen))]).strip()[: MAX_CHARS + 200]


def pair(claim: str, evidence: str, supported: bool, source: str) -> dict:
    return {"claim": " ".join(claim.split()), "evidence": " ".join(evidence.split()),
            "label": "supported" if supported else "not_supported", "source_set": source}


def scifact(repos: Repos) -> list[dict]:
    archive = tarfile.open(fileobj=io.BytesIO(repos.read("scifact", SOURCES["scifact"][2])), mode="r:gz")
    claims = jsonl(archive.extractfile("data/claims_train.jsonl").read())
    corpus = {str(d["doc_id"]): d for d in jsonl(archive.extractfile("data/corpus.jsonl").read())}
    out = []
    for claim in claims:
        evidence = {str(k): v for k, v in (claim.get("evidence") or {}).items()}
        for doc_id in dict.fromkeys([*evidence, *map(str, claim.get("cited_doc_ids") or [])]):
            doc = corpus.get(doc_id)
            if doc is None:
                continue
            parts = [s.strip() for s in doc["abstract"]]
            entries = evidence.get(doc_id, [])
            keep = [i for entry in entries for i in entry["sentences"]]
            supported = bool(entries) and entries[0]["label"] == "SUPPORT"
            out.append(pair(claim["claim"], window(doc.get("title", "").strip() + ".", parts, keep), supported, "scifact"))
    return out


def checkcovid(repos: Repos) -> list[dict]:
    folder = SOURCES["checkcovid"][2]
    claims = jsonl(repos.read("checkcovid", f"{folder}/train/covidCheck_train_composed+extracted.json"))
    corpus = {d["cord_id"]: d for d in jsonl(repos.read("checkcovid", f"{folder}/corpus.json"))}
    out = []
    for claim in claims:
        doc = corpus.get(claim["cord_id"])
        if doc is None:
            continue
        # the labels are about the annotated sentence(s), so those are the evidence
        chosen = sorted({e["sent_index"] for e in claim.get("evidence_set") or []})
        text = " ".join(doc["abstract"][i].strip() for i in chosen if i < len(doc["abstract"]))
        if text:
            out.append(pair(claim["claim"], f"{doc.get('title', '').strip()} {text}", claim["label"] == "SUPPORT", "checkcovid"))
    return out


def citint(repos: Repos) -> list[dict]:
    folder = SOURCES["citint"][2]
    corpus = {str(d["doc_id"]): d["abstract"] for d in jsonl(repos.read("citint", f"{folder}/corpus.jsonl"))}
    out = []
    for claim in jsonl(repos.read("citint", f"{folder}/claims_train.jsonl")):
        text = re.sub(r"\s+([.,;:])", r"\1", re.sub(r"<\|[^|>]*\|>", "", claim["claim"])).strip()  # citation markers
        for doc_id, entries in sorted(claim.get("evidence", {}).items()):
            parts = corpus.get(str(doc_id))
            if not parts:
                continue
            for entry in entries:
                if entry["label"] in ("SUPPORT", "REFUTE"):
                    out.append(pair(text, window("", parts, entry["sentences"]), entry["label"] == "SUPPORT", "citint"))
    return out


def halueval(repos: Repos) -> list[dict]:
    out = []
    for name in ("qa_one-turn_data.json", "qa_multi-turn_data.json"):
        for item in jsonl(repos.read("halueval", f"{SOURCES['halueval'][2]}/{name}")):
            right, wrong = item["right_answer"].strip(), item["hallucinated_answer"].strip()
            if not right or not wrong or len(right.split()) > 8 or len(wrong.split()) > 8 or normal(right) == normal(wrong):
                continue  # both short, so an answer's length says nothing
            evidence = window("", sentences(item["knowledge"]), [])
            out.append(pair(f"{item['question'].strip()} Answer: {right}", evidence, True, "halueval"))
            out.append(pair(f"{item['question'].strip()} Answer: {wrong}", evidence, False, "halueval"))
    return out


def wice_nst(repos: Repos) -> list[dict]:
    out = []
    for item in jsonl(repos.read("wice_nst", f"{SOURCES['wice_nst'][2]}/train.jsonl")):
        parts = item["evidence"] if isinstance(item["evidence"], list) else ast.literal_eval(item["evidence"])
        sets = item["supporting_sentences"] if isinstance(item["supporting_sentences"], list) else ast.literal_eval(item["supporting_sentences"])
        out.append(pair(item["claim"], window("", parts, [i for s in sets for i in s]), False, "wice_nst"))
    return out


def eval_index() -> tuple[set[str], set[str]]:
    """Normalised claims/questions and evidence sentences (40+ characters) of ../shared/eval."""
    claims, evidence = set(), set()

    def add(text: str) -> None:
        for sentence in sentences(text):
            if len(normal(sentence)) >= 40:
                evidence.add(normal(sentence))

    for row in map(json.loads, (EVAL / "wice" / "claim_test.jsonl").open()):
        claims.add(normal(row["claim"]))
        for sentence in row["evidence"]:
            add(sentence)
    for row in map(json.loads, (EVAL / "climate_fever" / "climate-fever.jsonl").open()):
        claims.add(normal(row["claim"]))
        for item in row["evidences"]:
            add(item["evidence"])
    for row in json.loads((EVAL / "pubmedqa" / "ori_pqal.json").read_text()).values():
        claims.add(normal(row["QUESTION"]))
        for context in row["CONTEXTS"]:
            add(context)
    for name in ("contexts.jsonl", "questions_dev.jsonl"):
        for row in map(json.loads, (EVAL / "squad2" / name).open()):
            claims.add(normal(row.get("question", "")))
            add(row.get("context", ""))
    claims.discard("")
    return claims, evidence


def touches_eval(row: dict, claims: set[str], evidence: set[str]) -> bool:
    if normal(row["claim"]) in claims or _CLIMATE.search(row["claim"]) or _CLIMATE.search(row["evidence"]):
        return True
    return any(normal(s) in evidence for s in sentences(row["evidence"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=Path, required=True, help="folder holding the repositories as owner+name")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    repos = Repos(args.repos)
    claims, evidence = eval_index()
    rows, seen, dropped = [], set(), Counter()
    for name, build in (("scifact", scifact), ("checkcovid", checkcovid), ("citint", citint), ("halueval", halueval), ("wice_nst", wice_nst)):
        for row in build(repos):
            key = (normal(row["claim"]), row["evidence"])
            if key in seen:
                dropped["duplicate"] += 1
            elif touches_eval(row, claims, evidence):
                dropped["touches the evaluation data"] += 1
            else:
                seen.add(key)
                rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = Counter((row["source_set"], row["label"]) for row in rows)
    print(json.dumps({"pairs": len(rows), "by_set": {f"{s}/{label}": n for (s, label), n in sorted(counts.items())}, "dropped": dict(dropped)}, indent=1))


if __name__ == "__main__":
    main()
