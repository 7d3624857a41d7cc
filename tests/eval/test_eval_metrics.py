"""The metric functions of lantern.eval.metrics on hand-computed values, and the benches using them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lantern.eval import metrics as m
from lantern.records import Answer, Claim, Evidence, Verdict

ROOT = Path(__file__).resolve().parents[2]


# --- classification ------------------------------------------------------------------------------

def test_balanced_accuracy_averages_the_two_class_rates():
    # positives: 1 of 2 found (0.5); negatives: 3 of 3 right (1.0)
    assert m.balanced_accuracy([1, 1, 0, 0, 0], [1, 0, 0, 0, 0]) == pytest.approx(0.75)
    assert m.balanced_accuracy([1, 0], [0, 1]) == 0.0


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    # bin [0.9, 1]: one right at 0.9 -> gap 0.1; bin [0.1, 0.2): one wrong at 0.1 -> gap 0.1; weights 1/2 each
    assert m.ece([1, 0], [0.9, 0.1]) == pytest.approx(0.1)
    assert m.ece([1, 1], [1.0, 1.0]) == pytest.approx(0.0)  # 1.0 falls in the last bin
    assert m.ece([0, 0], [1.0, 1.0]) == pytest.approx(1.0)


def test_macro_f1_and_recall_of_one_label():
    gold = ["S", "S", "R", "N"]
    pred = ["S", "R", "R", "S"]
    # S: tp 1 fp 1 fn 1 -> 0.5; R: tp 1 fp 1 fn 0 -> 2/3; N: tp 0 -> 0
    assert m.macro_f1(gold, pred, ["S", "R", "N"]) == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m.recall_of(gold, pred, "S") == 0.5
    assert m.recall_of(gold, pred, "X") is None


def test_retrieval_metrics():
    assert m.hit_at_k(["a", "b", "c"], {"c"}, 2) is False
    assert m.hit_at_k(["a", "b", "c"], {"c"}, 3) is True
    assert m.share_at_k(["a", "b", "c"], {"a", "c", "z", "y"}, 3) == 0.5
    assert m.recall_at_k([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], 2) == 0.5
    assert m.recall_at_k([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], 1) == 0.0


def test_citation_validity_needs_a_verbatim_quote_at_its_lines_from_a_retrieved_passage(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nThe exit gate is a linear unit.\nIt reads the hidden state.\n")
    passage = Evidence(chunk_id="c1", source=str(doc), text="The exit gate is a linear unit.\nIt reads the hidden state.", start_line=3, end_line=4)

    def claim(evidence: str, start: int, end: int, source: str = str(doc)) -> Claim:
        return Claim(claim="x", evidence=evidence, source=source, start_line=start, end_line=end, verdict=Verdict.supported)

    good = claim("The exit gate is a linear unit.", 3, 3)
    wrong_lines = claim("The exit gate is a linear unit.", 4, 4)
    tool = claim("4 * 24 = 96", 1, 1, source="tool:calculate")
    answer = Answer(question="q", answer="a", status="answered", claims=[good, wrong_lines, tool], evidence=[passage])
    assert m.citation_validity(answer) == (1, 2)  # the tool result is not a file: not checked
    not_retrieved = Answer(question="q", answer="a", status="answered", claims=[good], evidence=[])
    assert m.citation_validity(not_retrieved) == (0, 1)


def test_contains_fact_ignores_case_spacing_and_thousands_separators():
    assert m.contains_fact("Both use a vocabulary of 49152 tokens.", "49,152")
    assert m.contains_fact("Ouro re-applies its layers 4  times per token", "4 times per token")
    assert not m.contains_fact("Ouro-1.4B has 24 layers", "48 layers")


# --- reasoning answers ---------------------------------------------------------------------------

def test_gsm8k_gold_and_prediction():
    assert m.gsm8k_gold("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18") == "18"
    assert m.gsm8k_gold("...\n#### 1,000") == "1000"
    assert m.gsm8k_prediction("So 3 + 4 = 7 eggs.\n#### 7") == "7"
    assert m.gsm8k_prediction("#### 18 dollars over 2 days") == "18"  # the number after ####, not the last one
    assert m.gsm8k_prediction("She earns $18.00 per day.") == "18"  # no ####: the last number, $ and .00 aside
    assert m.gsm8k_prediction("No number here.") is None
    assert m.same_number(m.gsm8k_prediction("The answer is -3.50"), "-3.5")
    assert not m.same_number(None, "3")


def test_last_boxed_matches_braces():
    assert m.last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert m.last_boxed(r"\boxed{\left( 3, \frac{\pi}{2} \right)}") == r"\left( 3, \frac{\pi}{2} \right)"
    assert m.last_boxed(r"cut off \boxed{\frac{1}{") is None
    assert m.last_boxed("no box") is None
    assert m.math_prediction("no box, but 42 at the end") == "42"


@pytest.mark.parametrize("prediction, gold", [
    (r"\dfrac12", r"\frac{1}{2}"),
    ("0.5", r"\frac{1}{2}"),
    ("1/2", r"\frac{1}{2}"),
    ("x = 3", "3"),
    (r"10^\circ", "10"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"(3,\frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"\text{(C)}", "(C)"),
    ("1,000", "1000"),
    ("5.", "5"),
])
def test_math_answers_that_are_equal(prediction, gold):
    assert m.math_equal(prediction, gold)


@pytest.mark.parametrize("prediction, gold", [
    ("0.33", r"\frac{1}{3}"),
    (r"\frac{1}{3}", r"\frac{1}{2}"),
    ("(1,2)", "(2,1)"),
    (None, "3"),
])
def test_math_answers_that_are_not(prediction, gold):
    assert not m.math_equal(prediction, gold)


def test_bbh_answer_and_match():
    assert m.bbh_answer("A is True. So the answer is False.") == "False"
    assert m.bbh_answer("... So the answer is (B).\n\nQ: next") == "(B)"
    assert m.bbh_answer("I do not know") is None
    assert m.bbh_equal("(B)", "(B)") and m.bbh_equal("B", "(B)") and m.bbh_equal("(B) 12/25/1937", "(B)")
    assert not m.bbh_equal("(C)", "(B)") and not m.bbh_equal("Because", "(B)")
    assert m.bbh_equal("false", "False") and not m.bbh_equal("True", "False")
    assert not m.bbh_equal(None, "False")


# --- bootstrap -----------------------------------------------------------------------------------

def mean(values):
    return sum(values) / len(values)


def test_bootstrap_ci_brackets_the_statistic_and_is_seeded():
    values = [0] * 50 + [1] * 50
    lo, hi = m.bootstrap_ci(values, mean)
    assert 0.35 < lo < 0.5 < hi < 0.65
    assert m.bootstrap_ci(values, mean) == (lo, hi)  # same seed, same interval
    assert m.bootstrap_ci(values, mean, seed=1) != (lo, hi)
    assert m.bootstrap_ci([1, 1, 1], mean) == (1.0, 1.0)


def test_bootstrap_ci_matches_a_direct_resampling():
    import numpy as np

    values = [0.1, 0.5, 0.9, 0.3, 0.7]
    rng = np.random.default_rng(0)
    direct = [float(np.mean([values[i] for i in rng.integers(0, 5, 5)])) for _ in range(200)]
    assert m.bootstrap_ci(values, mean, n=200) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))


def test_bootstrap_ci_without_a_value_is_none():
    assert m.bootstrap_ci([], mean) is None
    assert m.bootstrap_ci([1, 2], lambda v: None) is None


# --- the benches call these --------------------------------------------------------------------

def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benches_compute_with_the_package_metrics():
    from lantern.toolcalls import bfcl

    verifier = load_bench("verifier")
    assert verifier.ece is m.ece
    assert verifier.balanced_accuracy([1, 1, 0, 0, 0], [1, 0, 0, 0, 0]) == pytest.approx(100 * 0.75)  # printed as percent
    assert verifier.macro_f1(["S", "R"], ["S", "S"], ["S", "R"]) == pytest.approx(100 * m.macro_f1(["S", "R"], ["S", "S"], ["S", "R"]))
    assert load_bench("ask").citation_validity is m.citation_validity
    retrieval = load_bench("retrieval")
    assert retrieval.recall_at_k is m.recall_at_k and retrieval.share_at_k is m.share_at_k
    assert load_bench("tools").gold_arguments is bfcl.gold_arguments
