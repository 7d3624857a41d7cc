"""The evaluation suites: where each one's items come from, how one item is run, how it is scored.

A suite loads its items for a split (dev = first half, test = second half of each file, by line or
key order; PubMedQA's test half is its official 500 test keys), runs one item (a record: a plain
dict with at least `id` and `correct`), and names the metrics computed over the records (each a
function of a list of records, so the runner can bootstrap it). `headline` names the metric that
`--json` reports as `accuracy`.

| suite | items | runs | headline |
|---|---|---|---|
| golden | data/eval/golden.jsonl over the shipped kb/ | the answer loop | accuracy (per item type) |
| gsm8k, math500, bbh | ../shared/eval | a plain completion | exact answer match |
| wice, climate-fever | ../shared/eval | the verifier alone (no model) | balanced accuracy |
| bfcl-simple, bfcl-multiple | ../shared/eval | a completion with the item's functions as tools | AST match |
| pubmedqa | ../shared/eval, 1,000 abstracts as files in LANTERN_HOME/eval/corpus | the answer loop | citation recall |

External data is read where it lies and never copied into the repository. The reasoning prompts
are below as constants (they belong in prompts/ as eval.toml once that folder takes them).
This module knows nothing about run files, progress or the leaderboard (lantern.eval.runner).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lantern.errors import LanternError
from lantern.eval import metrics as m
from lantern.prompts import load_prompts
from lantern.settings import Settings

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "data" / "eval" / "golden.jsonl"
SHIPPED_KB = REPO / "kb"

Metric = Callable[[list[dict]], float | None]


# --- context -----------------------------------------------------------------------------------


@dataclass
class EvalContext:
    """What a suite needs to run: settings, where the external data lies, shared heavy objects."""

    settings: Settings
    data: Path | None
    """The shared eval folder (../shared/eval), or None when it was not found."""
    searched: list[str] = field(default_factory=list)
    """Where the data folder was looked for (for the error message)."""
    require_model: bool = False
    """The user named a model: it must load (no extractive fallback)."""
    reasoner: Any = None
    """A reasoner for the answer loop instead of the configured backend's (a scripted fake in tests)."""
    cache: dict[str, Any] = field(default_factory=dict)
    """Objects made once per run and shared by its items (verifiers, knowledge bases, prompts)."""

    @property
    def prompts(self) -> dict[str, Any]:
        """The reasoning suites' prompts, prompts/eval.toml (or the user's prompts_dir copy)."""
        return load_prompts("eval", self.settings.prompts_dir)

    @property
    def home(self) -> Path:
        return self.settings.home / "eval"

    def data_file(self, *parts: str) -> Path:
        """A file of the external data, or a one-line error saying where it was looked for."""
        if self.data is not None and self.data.joinpath(*parts).exists():
            return self.data.joinpath(*parts)
        folders = [str(self.data)] if self.data is not None else self.searched
        where = [str(Path(s).joinpath(*parts)) for s in folders] or ["(no folder given)"]
        raise LanternError(f"no {parts[0]} data: looked for {' and '.join(where)}; pass --data DIR (the shared eval folder "
                           f"with {'/'.join(parts)}) or set eval_data (LANTERN_EVAL_DATA).")

    def verifier(self):
        """The verifier as the answer loop builds it (with the verifier_model judge when set), made once."""
        if "verifier" not in self.cache:
            from lantern.verify.support import Verifier

            judge = None
            if self.settings.verifier_model:
                from lantern.verify.judge import CrossEncoderJudge

                judge = CrossEncoderJudge(self.settings.verifier_model)
            self.cache["verifier"] = Verifier.from_settings(self.settings, judge=judge)
        return self.cache["verifier"]

    def plain_verifier(self):
        """The feature verifier without any judge: an independent reading for grounding precision."""
        if "plain_verifier" not in self.cache:
            from lantern.verify.support import Verifier

            self.cache["plain_verifier"] = Verifier.from_settings(self.settings)
        return self.cache["plain_verifier"]

    def kb(self, name: str, paths: list[Path]):
        """A knowledge base of its own under LANTERN_HOME/eval/kb-NAME holding `paths` (ingested
        incrementally: unchanged files are skipped on later runs)."""
        key = f"kb:{name}"
        if key not in self.cache:
            from lantern.knowledge import KnowledgeBase

            kb = KnowledgeBase.open(self.settings.model_copy(update={"home": self.home / f"kb-{name}"}))
            report = kb.ingest(paths)
            failed = getattr(report, "failed", None)
            if failed:
                print(f"note: {len(failed)} file(s) of the {name} corpus could not be ingested", file=sys.stderr)
            self.cache[key] = kb
        return self.cache[key]


def halves(items: list, split: str) -> list:
    """dev = the first half, test = the second half (by line or key order)."""
    half = len(items) // 2
    return items[:half] if split == "dev" else items[half:]


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --- metrics shared by every suite that generates --------------------------------------------------


def share(key: str, where: Callable[[dict], bool] = lambda r: True) -> Metric:
    """Mean of a boolean field over the records that have it (and pass `where`); None with none."""
    def metric(records: list[dict]) -> float | None:
        values = [bool(r[key]) for r in records if r.get(key) is not None and where(r)]
        return sum(values) / len(values) if values else None
    return metric


def ratio(numerator: str, denominator: str) -> Metric:
    """sum(numerator) / sum(denominator) over the records that have both fields (an item the metric
    does not apply to lacks them); None when a value is unknown (None) or the denominator sums to 0."""
    def metric(records: list[dict]) -> float | None:
        pairs = [(r[numerator], r[denominator]) for r in records if numerator in r and denominator in r]
        if not pairs or any(a is None or b is None for a, b in pairs) or not sum(b for _, b in pairs):
            return None
        return sum(a for a, _ in pairs) / sum(b for _, b in pairs)
    return metric


def median_of(key: str) -> Metric:
    def metric(records: list[dict]) -> float | None:
        values = [r[key] for r in records if r.get(key) is not None]
        return float(statistics.median(values)) if values else None
    return metric


def cost_metrics() -> dict[str, Metric]:
    """Latency (median seconds per item), the cost proxies per correct answer and per generated token
    (tokens, weight and KV bytes read, FLOPs, the prompt's prefill included; None where the backend
    cannot tell), and the average loop depth (loop steps per generated token, 1-based)."""
    def steps(records: list[dict]) -> float | None:
        with_steps = [r for r in records if r.get("steps") is not None and r.get("step_tokens")]
        return sum(r["steps"] for r in with_steps) / sum(r["step_tokens"] for r in with_steps) if with_steps else None

    def per_item(key: str) -> Metric:
        def metric(records: list[dict]) -> float | None:
            values = [r.get(key) for r in records]
            return sum(values) / len(values) if values and None not in values else None
        return metric

    return {"latency_s": median_of("seconds"), "tokens_per_correct": ratio("tokens", "correct"),
            "weight_bytes_per_correct": ratio("weight_bytes", "correct"), "flops_per_correct": ratio("flops", "correct"),
            "tokens_per_item": per_item("tokens"), "weight_bytes_per_token": ratio("weight_bytes", "tokens"),
            "flops_per_token": ratio("flops", "tokens"), "avg_exit_steps": steps}


def completion_fields(done) -> dict[str, Any]:
    """A Completion's cost fields as they go into a record."""
    return {"tokens": done.tokens, "prompt_tokens": done.prompt_tokens, "steps": sum(done.exit_steps) if done.exit_steps else None,
            "step_tokens": len(done.exit_steps) if done.exit_steps else None,
            "weight_bytes": done.weight_bytes, "flops": done.flops, "seconds": round(done.seconds, 4)}


# --- suites ----------------------------------------------------------------------------------------


class Suite:
    name = ""
    headline = "accuracy"
    uses_model = True
    """False: the suite runs the verifier alone, whatever backend is set."""
    about = ""

    def items(self, ctx: EvalContext, split: str) -> list[dict]:
        raise NotImplementedError

    def prepare(self, ctx: EvalContext, items: list[dict]) -> None:
        """Anything shared by the items (a knowledge base to build); called once per run."""

    def run(self, ctx: EvalContext, item: dict) -> dict:
        raise NotImplementedError

    def metrics(self, records: list[dict]) -> dict[str, Metric]:
        return {"accuracy": share("correct")} | cost_metrics()


class GSM8K(Suite):
    name = "gsm8k"
    about = "grade-school math word problems: the number after #### (else the last number) equals the gold"

    def items(self, ctx, split):
        rows = read_jsonl(ctx.data_file("gsm8k", "test.jsonl"))
        items = [{"id": f"gsm8k/{i}", "question": r["question"], "gold": m.gsm8k_gold(r["answer"])} for i, r in enumerate(rows)]
        return halves(items, split)

    def run(self, ctx, item):
        from lantern.backends.complete import complete

        done = complete(ctx.settings, [{"role": "user", "content": ctx.prompts["gsm8k"].format(question=item["question"])}],
                        ctx.settings.max_new_tokens)
        prediction = m.gsm8k_prediction(done.text)
        return {"id": item["id"], "correct": m.same_number(prediction, item["gold"]), "prediction": prediction, "gold": item["gold"],
                "output": done.text[-4000:]} | completion_fields(done)


class MATH500(Suite):
    name = "math500"
    about = "MATH-500 competition problems: the last \\boxed{} answer (else the last number), normalised, equals the gold"

    def items(self, ctx, split):
        rows = read_jsonl(ctx.data_file("math500", "test.jsonl"))
        items = [{"id": r.get("unique_id") or f"math500/{i}", "problem": r["problem"], "gold": r["answer"],
                  "subject": r.get("subject", "")} for i, r in enumerate(rows)]
        return halves(items, split)

    def run(self, ctx, item):
        from lantern.backends.complete import complete

        done = complete(ctx.settings, [{"role": "user", "content": ctx.prompts["math500"].format(problem=item["problem"])}],
                        ctx.settings.max_new_tokens)
        prediction = m.math_prediction(done.text)
        return {"id": item["id"], "correct": m.math_equal(prediction, item["gold"]), "prediction": prediction, "gold": item["gold"],
                "subject": item["subject"], "output": done.text[-4000:]} | completion_fields(done)


class BBH(Suite):
    name = "bbh"
    about = "BIG-Bench Hard, 27 tasks with their 3-shot chain-of-thought prompts: exact match after \"So the answer is\""

    def items(self, ctx, split):
        folder = ctx.data_file("bbh", "bbh")
        per_task = []
        for path in sorted(folder.glob("*.json")):
            examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
            per_task.append([{"id": f"bbh/{path.stem}/{i}", "task": path.stem, "input": e["input"], "gold": e["target"]}
                             for i, e in enumerate(examples)])
        per_task = [halves(task, split) for task in per_task]
        # Round robin over the tasks, so `--limit 27` asks one question of every task.
        return [task[i] for i in range(max(map(len, per_task), default=0)) for task in per_task if i < len(task)]

    def run(self, ctx, item):
        from lantern.backends.complete import complete

        examples = self._examples(ctx, item["task"])
        prompt = ctx.prompts["bbh"].format(examples=examples, input=item["input"])
        done = complete(ctx.settings, [{"role": "user", "content": prompt}], ctx.settings.max_new_tokens, stop=["\n\nQ:"])
        prediction = m.bbh_answer(done.text)
        return {"id": item["id"], "task": item["task"], "correct": m.bbh_equal(prediction, item["gold"]), "prediction": prediction,
                "gold": item["gold"], "output": done.text[-4000:]} | completion_fields(done)

    def _examples(self, ctx, task: str) -> str:
        key = f"bbh-prompt:{task}"
        if key not in ctx.cache:
            text = ctx.data_file("bbh", "cot-prompts", f"{task}.txt").read_text(encoding="utf-8")
            ctx.cache[key] = text.split("-----", 1)[-1].strip()  # after the canary line
        return ctx.cache[key]

    def metrics(self, records):
        tasks = sorted({r["task"] for r in records})

        def macro(rs: list[dict]) -> float | None:
            per = [share("correct", lambda r, t=t: r["task"] == t)(rs) for t in tasks]
            per = [p for p in per if p is not None]
            return sum(per) / len(per) if per else None

        per_task = {f"accuracy:{t}": share("correct", lambda r, t=t: r["task"] == t) for t in tasks}
        return {"accuracy": share("correct"), "task_macro_accuracy": macro} | cost_metrics() | per_task


# --- verification ----------------------------------------------------------------------------------


def _passages(sentences: list[str], source: str):
    """Each sentence as its own passage, at line i + 1 of a pretend file."""
    from lantern.records import Evidence

    return [Evidence(chunk_id=f"{source}:{i}", source=source, text=s, start_line=i + 1, end_line=i + 1) for i, s in enumerate(sentences)]


class WiCE(Suite):
    name = "wice"
    headline = "balanced_accuracy"
    uses_model = False
    about = "WiCE claims against their whole article, supported vs the rest (as LLM-AggreFact scores it)"

    def items(self, ctx, split):
        rows = read_jsonl(ctx.data_file("wice", "claim_test.jsonl"))
        items = [{"id": f"wice/{i}", "claim": r["claim"], "evidence": r["evidence"], "label": int(r["label"] == "supported"),
                  "gold_sentences": sorted({j for group in r["supporting_sentences"] for j in group})} for i, r in enumerate(rows)]
        return halves(items, split)

    def run(self, ctx, item):
        started = time.perf_counter()
        checked = ctx.verifier().check(item["claim"], _passages(item["evidence"], item["id"]))
        predicted = int(checked.verdict.value == "supported")
        quoted = checked.start_line - 1 if checked.source else None
        return {"id": item["id"], "label": item["label"], "confidence": checked.confidence, "verdict": checked.verdict.value,
                "correct": predicted == item["label"], "quoted_sentence": quoted,
                "quote_in_gold": (quoted in item["gold_sentences"]) if item["label"] and item["gold_sentences"] else None,
                "seconds": round(time.perf_counter() - started, 4)}

    def metrics(self, records):
        def balanced(rs):
            return m.balanced_accuracy([r["label"] for r in rs], [int(r["verdict"] == "supported") for r in rs])

        def calibration(rs):
            return m.ece([r["label"] for r in rs], [r["confidence"] for r in rs])

        return {"balanced_accuracy": balanced, "ece": calibration, "accuracy": share("correct"),
                "quote_in_gold": share("quote_in_gold"), "latency_s": median_of("seconds")}


class ClimateFEVER(Suite):
    name = "climate-fever"
    headline = "balanced_accuracy"
    uses_model = False
    about = "Climate-FEVER claim/sentence pairs: SUPPORTS vs rest balanced accuracy, 3-way macro-F1, REFUTES recall"
    LABEL = {"supported": "SUPPORTS", "contradicted": "REFUTES", "unsupported": "NOT_ENOUGH_INFO"}

    def items(self, ctx, split):
        rows = read_jsonl(ctx.data_file("climate_fever", "climate-fever.jsonl"))
        items = [{"id": f"climate-fever/{r.get('claim_id', i)}", "claim": r["claim"],
                  "pairs": [(e["evidence"], e["evidence_label"]) for e in r["evidences"]]} for i, r in enumerate(rows)]
        return halves(items, split)

    def run(self, ctx, item):
        started = time.perf_counter()
        pairs = []
        for sentence, gold in item["pairs"]:
            checked = ctx.verifier().check(item["claim"], _passages([sentence], item["id"]))
            pairs.append({"gold": gold, "pred": self.LABEL[checked.verdict.value], "confidence": checked.confidence})
        return {"id": item["id"], "pairs": pairs, "correct": all(p["gold"] == p["pred"] for p in pairs),
                "seconds": round(time.perf_counter() - started, 4)}

    def metrics(self, records):
        def flat(rs):
            return [p for r in rs for p in r["pairs"]]

        def balanced(rs):
            ps = flat(rs)
            return m.balanced_accuracy([int(p["gold"] == "SUPPORTS") for p in ps], [int(p["pred"] == "SUPPORTS") for p in ps])

        def f1(rs):
            ps = flat(rs)
            return m.macro_f1([p["gold"] for p in ps], [p["pred"] for p in ps], list(self.LABEL.values()))

        def refutes(rs):
            ps = flat(rs)
            return m.recall_of([p["gold"] for p in ps], [p["pred"] for p in ps], "REFUTES")

        def calibration(rs):
            ps = flat(rs)
            return m.ece([int(p["gold"] == "SUPPORTS") for p in ps], [p["confidence"] for p in ps])

        def pair_accuracy(rs):
            ps = flat(rs)
            return sum(p["gold"] == p["pred"] for p in ps) / len(ps) if ps else None

        return {"balanced_accuracy": balanced, "macro_f1": f1, "refutes_recall": refutes, "ece": calibration,
                "pair_accuracy": pair_accuracy, "latency_s": median_of("seconds")}


# --- tool calls ------------------------------------------------------------------------------------


class BFCL(Suite):
    headline = "accuracy"

    def __init__(self, name: str, file: str, about: str) -> None:
        self.name, self.file, self.about = name, file, about

    def items(self, ctx, split):
        from lantern.toolcalls.bfcl import bfcl_schema

        questions = read_jsonl(ctx.data_file("bfcl", f"BFCL_v4_{self.file}.json"))
        answers = {r["id"]: r["ground_truth"][0] for r in read_jsonl(ctx.data_file("bfcl", "possible_answer", f"BFCL_v4_{self.file}.json"))}
        items = []
        for row in questions:
            (gold_name, acceptable), = answers[row["id"]].items()  # simple and multiple: exactly one call
            tools = [{"name": f["name"], "description": f.get("description", ""), "input_schema": bfcl_schema(f["parameters"])}
                     for f in row["function"]]
            items.append({"id": row["id"], "messages": row["question"][0], "tools": tools, "gold_name": gold_name, "acceptable": acceptable})
        return halves(items, split)

    def run(self, ctx, item):
        return score_tool_calls(item, *generate_tool_calls(ctx.settings, item["messages"], item["tools"]))

    def metrics(self, records):
        return {"accuracy": share("correct"), "tool_call_validity": ratio("valid_calls", "calls"), "call_rate": share("called")} | cost_metrics()


def generate_tool_calls(settings, messages: list[dict], tools: list[dict]):
    """(calls and rejected calls the model made, the Completion): native function calls on openai
    (names made API-safe and mapped back), the text protocol of prompts/answer.toml elsewhere."""
    from lantern.backends.complete import complete
    from lantern.records import ToolCall
    from lantern.toolcalls.bfcl import openai_name
    from lantern.toolcalls.validate import parse_tool_calls

    prompts = load_prompts("answer", settings.prompts_dir)
    if settings.backend == "openai":
        safe = {openai_name(t["name"]): t["name"] for t in tools}
        done = complete(settings, messages, settings.max_new_tokens, tools=[t | {"name": openai_name(t["name"])} for t in tools])
        native = [ToolCall(name=safe.get(c.name, c.name), arguments=c.arguments) if isinstance(c, ToolCall) else c for c in done.tool_calls]
    else:
        tool_list = "\n".join(f"- {t['name']}: {t['description']} arguments schema: {json.dumps(t['input_schema'])}" for t in tools)
        system = {"role": "system", "content": prompts["tools"].format(tool_list=tool_list)}
        done = complete(settings, [system, *messages], settings.max_new_tokens)
        native = []
    calls, rejected = parse_tool_calls(done.text, prompts["tool_call_prefix"])
    return [*native, *calls, *rejected], done


def score_tool_calls(item: dict, parsed: list, done) -> dict:
    """A BFCL record: validity of every call (parsed, known tool, schema-valid) and the AST match of
    the one call the item asks for."""
    from lantern.records import ToolCall
    from lantern.toolcalls.bfcl import ast_mismatch
    from lantern.toolcalls.validate import check_call

    schemas = {t["name"]: t["input_schema"] for t in item["tools"]}
    calls = [p for p in parsed if isinstance(p, ToolCall)]
    checks = [check_call(c, schemas) for c in calls]
    problems = [p.error for p in parsed if not isinstance(p, ToolCall)] + [problem for problem in checks if problem]
    valid = sum(problem is None for problem in checks)
    mismatch = "expected exactly one call" if len(parsed) != 1 or len(calls) != 1 else ast_mismatch(
        calls[0].name, calls[0].arguments, item["gold_name"], item["acceptable"])
    return {"id": item["id"], "correct": mismatch is None, "calls": len(parsed), "valid_calls": valid, "called": bool(parsed),
            "made": [c.model_dump() for c in calls], "problems": problems, "mismatch": mismatch,
            "output": done.text[-2000:]} | completion_fields(done)


# --- grounded question answering -------------------------------------------------------------------


def ask(ctx: EvalContext, question: str, kb, history: list[dict] | None = None) -> dict[str, Any]:
    """Run the answer loop on one question; the Answer with the tool calls it made and its token costs."""
    from lantern.loop import events
    from lantern.records import Turn

    turns = [Turn(role=t["role"], text=t["text"]) for t in history or []]
    started = time.perf_counter()
    calls, steps, tokens = [], [], 0
    for event in events(question, ctx.settings, turns or None, kb=kb, reasoner=ctx.reasoner, require_model=ctx.require_model):
        if event.kind == "tool_call":
            calls.append(event)
        elif event.kind in ("token", "thinking"):
            tokens += 1
            if getattr(event, "exit_step", None):
                steps.append(event.exit_step)
    # Tokens here are the pieces streamed to the reader (tool-call lines are not streamed): close to,
    # not exactly, the model's token count; bytes and FLOPs are not measured through the loop.
    model_tokens = None if event.answer.backend == "extractive" else tokens  # quoted sentences are not generated tokens
    return {"answer": event.answer, "calls": calls, "seconds": round(time.perf_counter() - started, 4),
            "costs": {"tokens": model_tokens, "steps": sum(steps) if steps else None, "step_tokens": len(steps) or None,
                      "weight_bytes": None, "flops": None}}


def grounding(ctx: EvalContext, answer, gold_sources: list[str] | None) -> dict[str, Any]:
    """Grounding fields of an Answer: how many kept claims cite a passage that supports them (the
    feature verifier without a judge, against the cited passages only; a claim citing nothing is
    not grounded), how many came from a gold source file, whether a gold source was cited, and the
    citation validity of bench/ask.py."""
    kept = answer.claims
    grounded = 0
    for claim in kept:
        if claim.citations:
            grounded += ctx.plain_verifier().check(claim.claim, answer.evidence, claim.citations).verdict.value == "supported"
    cited = {Path(c.source).name for c in kept if c.source}
    valid, checked = m.citation_validity(answer)
    fields = {"kept": len(kept), "grounded": grounded, "dropped": len(answer.dropped), "valid_citations": valid, "checked_citations": checked,
              "status": answer.status, "backend": answer.backend, "model": answer.model, "answer_text": answer.answer[:2000]}
    if gold_sources:
        fields["kept_with_gold"] = len(kept)
        fields["from_gold"] = sum(Path(c.source).name in gold_sources for c in kept)
        fields["cited_gold"] = bool(cited & set(gold_sources))
    return fields


def grounded_metrics() -> dict[str, Metric]:
    def cited_gold(rs):
        return share("cited_gold")(rs)

    return {"grounding_precision": ratio("grounded", "kept"), "grounding_precision_gold": ratio("from_gold", "kept_with_gold"),
            "citation_recall": cited_gold, "citation_validity": ratio("valid_citations", "checked_citations")}


class Golden(Suite):
    name = "golden"
    about = "our own questions over the shipped kb/: answerable, unanswerable, tool-needing and follow-up items"

    def items(self, ctx, split):
        rows = read_jsonl(GOLDEN)
        by_type: dict[str, list[dict]] = {}
        for row in rows:
            by_type.setdefault(row["type"], []).append(row)
        return [item for group in by_type.values() for item in halves(group, split)]  # each type split in half

    def prepare(self, ctx, items):
        ctx.cache["golden-kb"] = ctx.kb("golden", [SHIPPED_KB])

    def run(self, ctx, item):
        asked = ask(ctx, item["question"], ctx.cache["golden-kb"], item.get("history"))
        answer = asked["answer"]
        record = {"id": item["id"], "type": item["type"], "seconds": asked["seconds"]} | asked["costs"]
        record |= grounding(ctx, answer, item.get("sources"))
        kept_text = " ".join(c.claim for c in answer.claims)
        kind = item["type"]
        if kind in ("answerable", "continuation"):
            record["facts_found"] = [f for f in item["facts"] if m.contains_fact(kept_text, f)]
            record["correct"] = len(record["facts_found"]) == len(item["facts"])
            record["abstained"] = answer.status == "not_in_kb"
        elif kind == "unanswerable":
            record["correct"] = record["abstained"] = answer.status == "not_in_kb"
        elif kind == "tool":
            gold = item["tool_call"]["name"]
            named = [c for c in asked["calls"] if c.call is not None and (c.call.name == gold or c.call.name.endswith("__" + gold))]
            record["calls"] = len(asked["calls"])
            record["valid_calls"] = sum(c.valid for c in asked["calls"])
            record["made"] = [c.call.model_dump() if c.call else {"raw": c.raw} for c in asked["calls"]]
            record["correct"] = any(c.valid for c in named) and m.contains_fact(answer.answer, item["value"])
        return record

    def metrics(self, records):
        def of(kind: str) -> Callable[[dict], bool]:
            return lambda r: r["type"] == kind

        return {
            "accuracy": share("correct"),
            "answer_accuracy": share("correct", of("answerable")),
            "continuation_accuracy": share("correct", of("continuation")),
            "abstention_accuracy": share("correct", of("unanswerable")),
            "false_abstention": share("abstained", of("answerable")),
            "tool_call_validity": ratio("valid_calls", "calls"),
            "action_correctness": share("correct", of("tool")),
        } | grounded_metrics() | cost_metrics()


class PubMedQA(Suite):
    name = "pubmedqa"
    headline = "citation_recall"
    about = ("PubMedQA questions over all 1,000 abstracts ingested as files: own abstract retrieved (recall@1/5) and cited, "
             "grounding, and yes/no/maybe accuracy when a model answers")

    def items(self, ctx, split):
        data = json.loads(ctx.data_file("pubmedqa", "ori_pqal.json").read_text(encoding="utf-8"))
        test_keys = set(json.loads(ctx.data_file("pubmedqa", "test_ground_truth.json").read_text(encoding="utf-8")))
        ctx.cache["pubmedqa-data"] = data
        return [{"id": f"pubmedqa/{key}", "key": key, "question": row["QUESTION"], "decision": row["final_decision"]}
                for key, row in data.items() if (key in test_keys) == (split == "test")]

    def prepare(self, ctx, items):
        folder = ctx.home / "corpus" / "pubmedqa"
        folder.mkdir(parents=True, exist_ok=True)
        for key, row in ctx.cache["pubmedqa-data"].items():  # the whole pool: retrieval is among all 1,000
            path = folder / f"{key}.txt"
            text = "\n\n".join(row["CONTEXTS"]) + "\n"
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
        if not (ctx.home / "kb-pubmedqa").exists():
            print("building the pubmedqa knowledge base (1,000 abstracts; once, a minute or two)...", file=sys.stderr)
        ctx.cache["pubmedqa-kb"] = ctx.kb("pubmedqa", [folder])

    def run(self, ctx, item):
        asked = ask(ctx, item["question"], ctx.cache["pubmedqa-kb"])
        answer = asked["answer"]
        own = f"{item['key']}.txt"
        ranked = [Path(e.source).name for e in answer.evidence if not e.source.startswith("tool:")]
        record = {"id": item["id"], "seconds": asked["seconds"], "hit@1": m.hit_at_k(ranked, [own], 1),
                  "hit@5": m.hit_at_k(ranked, [own], 5)} | asked["costs"]
        record |= grounding(ctx, answer, [own])
        record["correct"] = record["cited_gold"]
        record["abstained"] = answer.status == "not_in_kb"
        if answer.backend in ("ouro", "hf", "openai"):
            record |= self._decide(ctx, item, answer)
        return record

    def _decide(self, ctx, item, answer) -> dict:
        """The model's yes/no/maybe over the passages the answer saw (one short completion)."""
        import re

        from lantern.backends.complete import complete

        passages = "\n".join(f"[{i}] {' '.join(e.text.split())}" for i, e in enumerate(answer.evidence, 1)) or "(none)"
        done = complete(ctx.settings, [{"role": "user", "content": ctx.prompts["pubmedqa_decision"].format(passages=passages, question=item["question"])}], 16)
        said = re.search(r"\b(yes|no|maybe)\b", done.text.lower())
        decision = said.group(1) if said else None
        return {"decision": decision, "decision_correct": decision == item["decision"], "decision_gold": item["decision"]}

    def metrics(self, records):
        return {"citation_recall": share("cited_gold"), "recall@1": share("hit@1"), "recall@5": share("hit@5"),
                "decision_accuracy": share("decision_correct"), "false_abstention": share("abstained")} | {
            k: v for k, v in grounded_metrics().items() if k != "citation_recall"} | cost_metrics()


SUITES: dict[str, Suite] = {s.name: s for s in [
    Golden(), GSM8K(), MATH500(), BBH(), WiCE(), ClimateFEVER(),
    BFCL("bfcl-simple", "simple_python", "BFCL v4 simple_python: one function, one call; AST match to the gold"),
    BFCL("bfcl-multiple", "multiple", "BFCL v4 multiple: 2 to 4 functions, one call; AST match to the gold"),
    PubMedQA(),
]}


def suite(name: str) -> Suite:
    if name not in SUITES:
        raise LanternError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}.")
    return SUITES[name]


def find_data(given: str | None) -> tuple[Path | None, list[str]]:
    """The shared eval folder: `given` (--data, or the eval_data setting), else ../shared/eval from
    the current folder, else ../shared/eval beside this checkout. Returns (folder or None, places looked)."""
    if given:
        return (Path(given).expanduser() if Path(given).expanduser().is_dir() else None), [given]
    candidates = [str(Path.cwd().parent / "shared" / "eval"), str(REPO.parent / "shared" / "eval")]
    looked = list(dict.fromkeys(c for c in candidates if c))
    for place in looked:
        if Path(place).is_dir():
            return Path(place), looked
    return None, looked
