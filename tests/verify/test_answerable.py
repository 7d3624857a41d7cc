"""The learned answerability check: merged adapters against the autograd reference, the passage
window, the shipped weights, bad weight files, the training data's variants and a seeded training
step, and how the loop uses the check."""

from __future__ import annotations

import sys

import pytest
import torch

from lantern.bert_encoder import BertEncoder
from lantern.errors import LanternError
from lantern.verify import answerable as ans
from scripted import ROOT

sys.path.insert(0, str(ROOT / "bench"))

LAKE = ("Lake Tahoe is a large freshwater lake in the Sierra Nevada. It straddles the state line between California "
        "and Nevada. The lake is 501 m deep at its deepest point. Its water is famous for its clarity. Tourism is "
        "the main industry along its shore.")


@pytest.fixture(scope="module")
def encoder():
    return BertEncoder(ans.base_encoder())


def random_adapters(encoder: BertEncoder, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    adapters = {}
    for layer in range(encoder.layers):
        for part in ans.ADAPTED:
            stem = f"encoder.layer.{layer}.{part}"
            out_dim, in_dim = encoder.weights[stem + ".weight"].shape
            adapters[stem + ".lora_a"] = torch.randn(rank, in_dim, generator=generator) / in_dim ** 0.5
            adapters[stem + ".lora_b"] = 0.05 * torch.randn(out_dim, rank, generator=generator)
    return adapters


def test_merged_adapters_give_the_autograd_reference_logits(encoder):
    adapters = random_adapters(encoder)
    head = {"head.weight": torch.randn(encoder.hidden_size), "head.bias": torch.tensor(0.3)}
    ids, types, mask = encoder.tokenize([("How deep is Lake Tahoe?", LAKE), ("Who built the bridge?", "A short one.")], 64)
    base = {n: t.float() for n, t in encoder.weights.items()}
    reference = ans.pooled_logit(encoder, ans.adapted_weights(base, adapters, 2.0), head, ids, types, mask)
    merged = ans.pooled_logit(encoder, ans.merged_weights(encoder.weights, adapters, 2.0), head, ids, types, mask)
    plain = ans.pooled_logit(encoder, base, head, ids, types, mask)
    assert torch.allclose(merged, reference, atol=1e-4)
    assert not torch.allclose(plain, reference, atol=1e-2)  # the adapters really change the result


def test_the_window_is_whole_sentences_around_the_one_asked_for():
    text = " ".join(f"Sentence number {i} says something about the lake and its long history." for i in range(30))
    piece = ans.window(text, "Sentence number 17 says", max_chars=200)
    assert "Sentence number 17 says" in piece
    assert len(piece) <= 200 and piece.startswith("Sentence number") and piece.endswith("history.")
    assert ans.window(text, "", max_chars=200).startswith("Sentence number 0 ")
    assert ans.window("One short text without a full stop", "") == "One short text without a full stop"


def test_a_window_is_read_under_its_heading_path_unless_it_opens_with_it():
    assert ans.titled("Ouro > Early exit", "The model stops looping.") == "Ouro: Early exit. The model stops looping."
    assert ans.titled("Ouro", "# Ouro Ouro applies its layers four times.") == "# Ouro Ouro applies its layers four times."
    assert ans.titled("", "No heading here.") == "No heading here."


def test_the_shipped_weights_load_on_their_base_and_read_question_against_passage():
    model = ans.AnswerabilityModel()
    assert model.info["base_sha256"] == ans.base_digest(ans.base_encoder())
    assert 0.0 < model.threshold < 1.0
    assert ans.WEIGHTS_PATH.stat().st_size < 1_000_000
    answers = model("How deep is Lake Tahoe?", LAKE)
    elsewhere = model("How deep is Lake Tahoe?", "The Golden Gate Bridge opened in 1937. It is painted International "
                                                   "Orange and spans the strait between San Francisco and Marin County.")
    assert 0.0 < elsewhere < answers < 1.0


def test_unreadable_or_foreign_weights_are_one_line_errors(tmp_path):
    bad = tmp_path / "answerable.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(LanternError, match="answerability_check = false"):
        ans.AnswerabilityModel(bad)
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(ans.WEIGHTS_PATH), "pt") as handle:
        tensors = {n: handle.get_tensor(n) for n in handle.keys()}
        info = json.loads(handle.metadata()["info"])
    info["base_sha256"] = "0" * 64
    save_file(tensors, str(bad), metadata={"info": json.dumps(info)})
    with pytest.raises(LanternError, match="another base encoder"):
        ans.AnswerabilityModel(bad)


ARTICLE = {"title": "Lake", "paragraphs": [
    {"context": LAKE, "qas": [
        {"question": "How deep is Lake Tahoe?", "is_impossible": False, "answers": [{"text": "501 m", "answer_start": LAKE.index("501 m")}]},
        {"question": "What is the largest industry by Lake Tahoe?", "is_impossible": False,
         "answers": [{"text": "Tourism", "answer_start": LAKE.index("Tourism")}]},
        {"question": "How deep is Lake Nevada?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "501 m", "answer_start": LAKE.index("501 m")}]}]},
    {"context": "Mark Twain visited Lake Tahoe in 1861. He wrote about the lake in Roughing It, published in 1872.", "qas": []}]}


def test_training_variants_are_unanswerable_from_their_passage():
    import train_answerable as train

    rng = __import__("random").Random(0)
    other = ARTICLE["paragraphs"][1]["context"]
    paragraphs = [LAKE, other]
    removed = train.variant("removed", "How deep is Lake Tahoe?", LAKE, ["501 m"], paragraphs, rng)
    assert removed[0] == "How deep is Lake Tahoe?" and "501" not in removed[1] and "clarity" in removed[1]
    elsewhere = train.variant("other", "How deep is Lake Tahoe?", LAKE, ["501 m"], paragraphs, rng)
    assert elsewhere[1].startswith("Mark Twain")
    swapped = train.variant("swap", "How deep is Lake Tahoe?", LAKE, ["501 m"], paragraphs, rng)
    new_name = swapped[0].removeprefix("How deep is ").removesuffix("?")  # "Lake Tahoe" swapped for a name of the other paragraph
    assert new_name != "Lake Tahoe" and new_name in other and new_name not in LAKE
    antonym = train.variant("antonym", "What is the largest industry by Lake Tahoe?", LAKE, ["Tourism"], paragraphs, rng)
    assert antonym[0] == "What is the smallest industry by Lake Tahoe?"
    assert train.variant("negation", "How deep is Lake Tahoe?", LAKE, ["501 m"], paragraphs, rng) is None  # "How deep" has no auxiliary
    rows, counts = train.build_pairs([ARTICLE])
    assert counts["answer"] == 2 and counts["squad"] == 1 and sum(counts.values()) == len(rows) == 5
    assert [label for _, _, label, kind in rows if kind == "squad"] == [0.0]


def test_training_is_seeded(tmp_path):
    import train_answerable as train

    rows, _ = train.build_pairs([ARTICLE])
    first = train.train(rows, epochs=1, batch=2, lr=1e-3, log=lambda line: None)
    second = train.train(rows, epochs=1, batch=2, lr=1e-3, log=lambda line: None)
    for a, b in zip(first, second):
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert any(float(t.abs().max()) > 0 for n, t in first[0].items() if n.endswith("lora_b"))  # it learned something
    out = tmp_path / "weights.safetensors"
    train.write(out, *first, {"scale": train.SCALE, "threshold": 0.5, "base_sha256": ans.base_digest(ans.base_encoder())})
    train.set_threshold(out, 0.3)
    model = ans.AnswerabilityModel(out)
    assert model.threshold == 0.3 and 0.0 < model("How deep is Lake Tahoe?", LAKE) < 1.0
