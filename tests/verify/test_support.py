"""The verifier's layers on small, unambiguous cases (real MiniLM, fitted weights)."""

import numpy as np
import pytest

from lantern.records import Evidence
from lantern.settings import load_settings
from lantern.verify.support import Calibration, SupportModel, Verifier, claim_parts, content_words, entities, fit_logistic, has_negation, numbers, stem


def passage(text, line=10):
    return Evidence(chunk_id="c", source="/docs/a.md", text=text, start_line=line, end_line=line + text.count("\n"))


@pytest.fixture(scope="module")
def verifier():
    return Verifier.from_settings(load_settings())


def test_cheap_detectors():
    assert numbers("In 1,200 cases and 3.5% of 2021") == {"1200", "3.5", "2021"}
    assert "ouro" in entities("The model Ouro was released by ByteDance.") and "bytedance" in entities("By ByteDance.")
    assert has_negation("It does not stop") and has_negation("It isn't") and not has_negation("It stops")
    assert len(claim_parts("Ouro loops four times, and the gate decides when to stop")) == 2



def test_names_and_numbers_are_found_however_they_are_written():
    assert numbers("It loops four times, twenty-two layers, one of them") == {"4", "22"}  # "one" is often a pronoun
    assert entities("A game in Pittsburgh’s arena with Pérez.") == entities("A game in Pittsburgh arena with Perez.") == {"pittsburgh", "perez"}
    assert content_words("Zürich's café") == content_words("Zurich cafe")


def test_verbatim_claim_is_supported_with_its_exact_line(verifier):
    text = "Lantern stores vectors locally.\nThe exit gate is a sigmoid unit that reads the hidden state."
    claim = verifier.check("The exit gate is a sigmoid unit that reads the hidden state.", [passage(text)], [1])
    assert claim.verdict == "supported" and claim.confidence == 1.0
    assert claim.evidence == "The exit gate is a sigmoid unit that reads the hidden state." and claim.start_line == claim.end_line == 11
    # Case, spacing, quotes and the closing stop aside it is still the source's own sentence...
    assert verifier.check("  the exit gate is a sigmoid unit that reads  the hidden state", [passage(text)], [1]).confidence == 1.0
    # ...but any changed word sends it through the scored layers, and a negation flips the verdict.
    reworded = verifier.check("The exit gate is a sigmoid unit that reads the input tokens.", [passage(text)], [1])
    negated = verifier.check("The exit gate is not a sigmoid unit that reads the hidden state.", [passage(text)], [1])
    assert 0.0 < reworded.confidence < 1.0
    assert negated.verdict == "contradicted" and negated.confidence == 0.0 and negated.start_line == 11


def test_unrelated_claim_is_not_supported(verifier):
    claim = verifier.check("Napoleon invented the steam locomotive in 1850.", [passage("The exit gate is a sigmoid unit.")], [1])
    assert claim.verdict != "supported" and claim.confidence < 0.5


def test_off_topic_claim_without_names_or_numbers_is_not_supported(verifier):
    evidence = [passage("# Looped language models and early exit\nThe exit gate is a sigmoid unit.")]
    for claim in ("fledim fledim fledim fledim fledim", "the weather is pleasant and the food tastes good"):
        assert verifier.check(claim, evidence, [1]).verdict != "supported"


def test_confidence_rises_with_support(verifier):
    evidence = [passage("Ouro was trained on 7.7 trillion tokens by ByteDance in 2025.")]
    exact = verifier.check("Ouro was trained on 7.7 trillion tokens.", evidence).confidence
    wrong_number = verifier.check("Ouro was trained on 2.1 trillion tokens.", evidence).confidence
    assert exact > wrong_number


def test_sign_constrained_fit_is_monotone():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 9))
    y = (x[:, 0] - x[:, 7] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    x[:, 1] = -x[:, 0] + rng.normal(scale=0.1, size=400)  # a feature that would get a negative weight
    signs = np.array([1, 1, 1, 1, 1, 1, 1, -1, -1])
    cal = fit_logistic(x, y, signs=signs)
    assert np.all(cal.coef * signs >= 0) and cal.coef[0] > 0 and cal.coef[7] < 0
    model = SupportModel.load()
    assert isinstance(model.relevant, Calibration) and isinstance(model.complete, Calibration)


def test_a_word_s_common_forms_share_one_key():
    for forms in (["decide", "decides", "decided", "deciding"], ["stop", "stops", "stopped", "stopping"],
                  ["increase", "increases", "increased"], ["loop", "loops", "looping", "looped"]):
        assert len({stem(w) for w in forms}) == 1, forms
    assert set(content_words("How does Ouro decide when to stop looping?")) <= set(content_words("Ouro decides: it stopped the loops"))
