"""Model-judgement layer: an NLI cross-encoder from a local folder (a tiny random one built here)."""

import pytest

from lantern.errors import LanternError
from lantern.records import Evidence, Verdict
from lantern.settings import load_settings
from lantern.verify.judge import CrossEncoderJudge
from lantern.verify.support import Verifier


def make_tiny_nli(path, labels=("contradiction", "entailment", "neutral")):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["ouro loops four times per token the gate decides when to stop"] * 3,
                            trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(path)
    config = BertConfig(vocab_size=fast.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_three_way_nli_reads_the_entailment_probability(tmp_path):
    judge = CrossEncoderJudge(str(make_tiny_nli(tmp_path / "nli")))
    assert judge.entail == 1
    p = judge("Ouro loops four times.", "The gate decides when to stop.")
    assert 0.0 < p < 1.0


def test_single_output_fact_checker_is_read_through_a_sigmoid(tmp_path):
    judge = CrossEncoderJudge(str(make_tiny_nli(tmp_path / "hhem", labels=("consistent",))))
    assert judge.entail is None and 0.0 < judge("a claim", "some evidence") < 1.0


def test_nli_without_an_entailment_label_or_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(LanternError, match="entailment"):
        CrossEncoderJudge(str(make_tiny_nli(tmp_path / "odd", labels=("positive", "negative"))))
    with pytest.raises(LanternError, match="cannot load verifier_model"):
        CrossEncoderJudge(str(tmp_path / "missing"))


def test_verifier_combines_the_judge_with_its_features(tmp_path):
    settings = load_settings()
    evidence = [Evidence(chunk_id="c", source="/a.md", text="Ouro loops four times per token.", start_line=1, end_line=1)]
    claim = "Ouro runs its layers four times for every token."
    plain = Verifier.from_settings(settings).check(claim, evidence, [1])
    sure = Verifier.from_settings(settings, judge=lambda claim, ev: 0.99).check(claim, evidence, [1])
    doubt = Verifier.from_settings(settings, judge=lambda claim, ev: 0.01).check(claim, evidence, [1])
    assert doubt.confidence < plain.confidence < sure.confidence
    # The source's own sentence is settled before any judgement: the judge is not asked.
    copied = Verifier.from_settings(settings, judge=lambda claim, ev: 1 / 0).check("Ouro loops four times per token.", evidence, [1])
    assert copied.verdict == "supported" and copied.confidence == 1.0


def test_a_judge_that_always_says_yes_cannot_rescue_unrelated_or_garbage_claims(tmp_path):
    """A random-weights LoopLM judged its own token soup "supported" (p 0.99 averaged with 0.004)."""
    settings = load_settings()
    evidence = [Evidence(chunk_id="c", source="/a.md", text="Both use a vocabulary of 49,152 tokens and rotary position embeddings.", start_line=1, end_line=1)]
    yes_man = Verifier.from_settings(settings, judge=lambda claim, ev: 0.9999)
    for claim in ("ves keners ken ken ken ken ken moken ves", "Paris hosted the 1924 Summer Olympics."):
        checked = yes_man.check(claim, evidence, [1])
        assert checked.verdict != Verdict.supported, claim
        assert checked.confidence < settings.min_support
