"""The native Ouro runtime against the naive reference, on tiny random checkpoints in the official format."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lantern.errors import CheckpointError, ModelNotFound
from lantern.runtime import load
from lantern.runtime.exit import exit_probabilities, exit_step
from lantern.runtime.loader import read_weights
from lantern.runtime.reference import ReferenceOuro
from lantern.runtime.testing import make_random_checkpoint

PROMPT = "Ouro is a looped language model"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_random_checkpoint(tmp_path_factory.mktemp("ckpt"), "tiny", seed=0, dtype=torch.float32)


@pytest.fixture(scope="module")
def lm(checkpoint):
    return load(checkpoint, dtype="float32")


@pytest.fixture(scope="module")
def lm64(checkpoint):
    return load(checkpoint, dtype=torch.float64)


@pytest.fixture(scope="module")
def reference(checkpoint, lm):
    return ReferenceOuro(read_weights(checkpoint), lm.config, torch.float64)


def test_public_load_is_the_function_whatever_was_imported_first():
    import importlib
    import pkgutil

    import lantern.runtime as runtime

    for info in pkgutil.iter_modules(runtime.__path__):
        importlib.import_module(f"lantern.runtime.{info.name}")
    assert callable(runtime.load) and runtime.load.__module__ == "lantern.runtime"


def test_snapshot_format_is_the_official_one(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "ouro" and config["architectures"] == ["OuroForCausalLM"] and config["total_ut_steps"] == 4
    names = set(read_weights(checkpoint))
    assert {"model.early_exit_gate.weight", "model.early_exit_gate.bias", "lm_head.weight", "model.layers.1.input_layernorm_2.weight"} <= names
    assert len(names) == 2 * 11 + 5
    for file in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"):
        assert (checkpoint / file).exists()


def test_exit_rule():
    gates = torch.tensor([[10.0, 0.0, 0.0, 0.0], [-10.0, -10.0, -10.0, -10.0], [0.0, 0.0, 0.0, 0.0]])
    probs = exit_probabilities(gates)
    assert torch.allclose(probs.sum(-1), torch.ones(3))
    assert exit_step(gates, 0.5).tolist() == [0, 3, 0]
    assert exit_step(gates, 0.8).tolist() == [0, 3, 2]  # 0.5, 0.75, 0.875
    assert exit_step(gates, 1.0).tolist() == [3, 3, 3]
    assert exit_step(gates, 0.5, min_steps=2).tolist() == [1, 3, 1]
    assert exit_step(gates, 0.5, max_steps=2).tolist() == [0, 1, 0]


def test_step_logits_match_the_reference(lm64, reference):
    ids = lm64.encode(PROMPT)
    logits, gates = lm64.step_logits(ids)
    ref_logits, ref_gates = reference.step_logits(ids[0].tolist())
    assert logits.shape == (4, 1, ids.shape[1], lm64.config.vocab_size) and gates.shape == (4, 1, ids.shape[1])
    assert torch.allclose(logits[:, 0].double(), ref_logits, atol=1e-5)
    assert torch.allclose(gates[:, 0].double(), ref_gates, atol=1e-7)


@pytest.mark.parametrize("mode", ["fast", "deep"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9])
def test_greedy_tokens_and_exit_steps_match_the_reference(lm64, reference, mode, threshold):
    ids = lm64.encode(PROMPT)
    fast = [(t.id, t.exit_step) for t in lm64.generate(ids, max_new_tokens=16, mode=mode, exit_threshold=threshold)]
    naive = reference.generate_greedy(ids[0].tolist(), 16, mode=mode, threshold=threshold)
    assert fast == naive
    if mode == "fast":
        assert {e for _, e in fast} == {3}


def test_deep_mode_really_exits_at_varied_depths(lm64):
    steps = [t.exit_step for t in lm64.generate(lm64.encode(PROMPT), max_new_tokens=24, mode="deep", exit_threshold=0.5)]
    assert len(set(steps)) >= 2 and min(steps) < 3


def test_min_and_max_steps_clamp_deep_mode(lm64, reference):
    ids = lm64.encode(PROMPT)
    clamped = [(t.id, t.exit_step) for t in lm64.generate(ids, max_new_tokens=10, mode="deep", exit_threshold=0.3, min_steps=2, max_steps=3)]
    assert all(1 <= e <= 2 for _, e in clamped)
    assert clamped == reference.generate_greedy(ids[0].tolist(), 10, "deep", 0.3, min_steps=2, max_steps=3)


def test_cached_decode_matches_uncached_full_recompute_in_fast_mode(lm64):
    ids = lm64.encode(PROMPT)
    tokens = [t.id for t in lm64.generate(ids, max_new_tokens=8, mode="fast")]
    seq = ids[0].tolist()
    for token in tokens:
        logits, _ = lm64.step_logits(torch.tensor([seq]))
        assert int(logits[-1, 0, -1].argmax()) == token
        seq.append(token)


@pytest.mark.parametrize("mode", ["fast", "deep"])
def test_batched_generation_matches_single(lm64, mode):
    prompts = [PROMPT, "The quick brown fox", "Yes"]
    batched = lm64.generate_batch(prompts, max_new_tokens=10, mode=mode, exit_threshold=0.5)
    for prompt, got in zip(prompts, batched):
        single = [(t.id, t.exit_step) for t in lm64.generate(prompt, max_new_tokens=10, mode=mode, exit_threshold=0.5)]
        assert [(t.id, t.exit_step) for t in got] == single


def test_batched_step_logits_with_left_padding_match_single(lm64):
    short, long_ = lm64.encode("Yes")[0].tolist(), lm64.encode(PROMPT)[0].tolist()
    ids = torch.tensor([[0] * (len(long_) - len(short)) + short, long_])
    mask = torch.tensor([[0] * (len(long_) - len(short)) + [1] * len(short), [1] * len(long_)])
    logits, _ = lm64.step_logits(ids, mask)
    alone, _ = lm64.step_logits(torch.tensor([short]))
    assert torch.allclose(logits[:, 0, -len(short):], alone[:, 0], atol=1e-9)


def test_float32_fast_path_agrees_with_reference(lm, reference):
    ids = lm.encode(PROMPT)
    logits, _ = lm.step_logits(ids)
    ref_logits, _ = reference.step_logits(ids[0].tolist())
    assert torch.allclose(logits[:, 0].double(), ref_logits, atol=1e-3)


def test_sampling_is_seeded_and_respects_top_k(lm):
    ids = lm.encode(PROMPT)
    run = lambda seed: [t.id for t in lm.generate(ids, max_new_tokens=12, temperature=1.0, top_k=5, top_p=0.9, seed=seed)]  # noqa: E731
    assert run(1) == run(1)
    assert run(1) != run(2) or run(1) != run(3)


def test_greedy_is_deterministic_and_max_tokens_respected(lm):
    ids = lm.encode(PROMPT)
    first = [t.id for t in lm.generate(ids, max_new_tokens=7)]
    assert first == [t.id for t in lm.generate(ids, max_new_tokens=7)] and len(first) == 7


def test_repetition_penalty_changes_repeats(lm):
    from lantern.runtime.generate import GenerationOptions, sample

    penalty = GenerationOptions(repetition_penalty=3.0)
    # A seen token's positive logit is divided, a negative one multiplied: both lose to the runner-up.
    assert sample(torch.tensor([[2.0, 1.5, -1.0]]), [[0]], penalty, None).item() == 1
    assert sample(torch.tensor([[-0.5, -1.0, -2.0]]), [[0]], penalty, None).item() == 1
    assert sample(torch.tensor([[2.0, 1.5, -1.0]]), [[2]], penalty, None).item() == 0  # unseen tokens keep theirs
    ids = lm.encode(PROMPT)
    plain = [t.id for t in lm.generate(ids, max_new_tokens=20, mode="fast")]
    assert len(set(plain)) < len(plain)  # the random model repeats itself, so the penalty has work to do
    penalised = [t.id for t in lm.generate(ids, max_new_tokens=20, mode="fast", repetition_penalty=3.0)]
    assert penalised != plain and len(set(penalised)) > len(set(plain))


def test_stops_on_eos_and_stop_strings(lm):
    ids = lm.encode(PROMPT)
    tokens = list(lm.generate(ids, max_new_tokens=20, mode="fast"))
    eos_lm_stop = tokens[2].id
    lm.stop_ids.add(eos_lm_stop)
    try:
        stopped = list(lm.generate(ids, max_new_tokens=20, mode="fast"))
        assert stopped[-1].id == eos_lm_stop and len(stopped) <= 3
    finally:
        lm.stop_ids.discard(eos_lm_stop)
    text = "".join(t.text for t in tokens)
    assert len(text.strip()) >= 4  # something to stop on
    needle = text.strip()[-3:]  # late in the text, so stopping on it must cut the generation short
    cut = list(lm.generate(ids, max_new_tokens=20, mode="fast", stop=[needle]))
    cut_text = "".join(t.text for t in cut)
    assert needle in cut_text and needle not in "".join(t.text for t in cut[:-1])  # stopped at the token that completed it
    assert len(cut) < len(tokens) and text.startswith(cut_text)


def test_chat_template_and_thinking_split(lm, tmp_path):
    ids = lm.chat_ids([{"role": "user", "content": "Hi"}])
    text = lm.tokenizer.decode(ids[0])
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert 2 in lm.stop_ids  # <|im_end|>
    thinking = load(make_random_checkpoint(tmp_path / "t", "tiny", thinking=True), dtype="float32")
    assert thinking.tokenizer.decode(thinking.chat_ids([{"role": "user", "content": "Hi"}])[0]).endswith("<think>\n")


def test_bf16_and_sharded_checkpoints_load(tmp_path):
    sharded = make_random_checkpoint(tmp_path / "s", "tiny", seed=3, shards=3)
    lm = load(sharded)
    assert lm.model.lm_head.weight.dtype == torch.bfloat16
    assert 1 <= len(list(lm.generate(PROMPT, max_new_tokens=4))) <= 4


def test_bad_checkpoints_get_one_line_errors(tmp_path, checkpoint):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load(broken)
    wrong = tmp_path / "wrong"
    shutil.copytree(checkpoint, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["intermediate_size"] = 999
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape"):
        load(wrong)
    (wrong / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(wrong)
    with pytest.raises(ModelNotFound, match="lantern model pull"):
        load("ouro-1.4b")
    with pytest.raises(ModelNotFound):
        load(tmp_path / "nowhere")


def test_bf16_model_tracks_float64(checkpoint, reference):
    lm = load(checkpoint, dtype="bfloat16")
    ids = lm.encode(PROMPT)
    logits, _ = lm.step_logits(ids)
    ref_logits, _ = reference.step_logits(ids[0].tolist())
    top_ref = ref_logits[:, -1].argmax(-1)
    assert (logits[:, 0, -1].argmax(-1) == top_ref).float().mean() >= 0.5
    assert math.isfinite(float(logits.abs().max()))


def test_streamed_text_matches_one_full_decode(lm):
    """The windowed incremental decoder against the reference: decoding all ids at once."""
    import random

    from lantern.runtime.generate import Decoder

    tok = lm.tokenizer
    text = "Ouro loops 4 times — naïve café, 東京 🙂 and <|im_end|> done.\n\nNew para: x=1.5e-3; \"quoted\"."
    ids = tok.encode(text, add_special_tokens=False)
    decoder = Decoder(tok)
    assert "".join(decoder.push(i) for i in ids) == tok.decode(ids, skip_special_tokens=True) == decoder.text
    rng = random.Random(0)
    for _ in range(100):  # arbitrary ids, broken UTF-8 included: only a trailing partial character may be held back
        ids = [rng.randrange(len(tok)) for _ in range(40)]
        decoder = Decoder(tok)
        streamed = "".join(decoder.push(i) for i in ids)
        assert streamed == decoder.full_text().rstrip("\ufffd") or streamed == decoder.full_text()
    # A lone UTF-8 lead byte repeated (a random model's favourite) never completes a character:
    # it is released as replacement characters, holding back at most MAX_HELD_TOKENS - 1 tokens.
    from lantern.runtime.generate import MAX_HELD_TOKENS

    lead = tok.convert_tokens_to_ids("ł")  # byte 0xC5 in byte-level BPE: the start of a 2-byte character
    decoder = Decoder(tok)
    pieces = [decoder.push(lead) for _ in range(16)]
    assert "".join(pieces) and set("".join(pieces)) == {"\ufffd"}
    assert len(decoder.ids) - decoder.read_offset < MAX_HELD_TOKENS


HEAP_PROBE = """
import re, sys, torch
def anon_mb():
    return int(re.search(r"RssAnon:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
if len(sys.argv) > 1:  # a checkpoint: load it first, as every Lantern process that runs a model does
    from lantern.runtime import load
    load(sys.argv[1])
block = torch.ones(4 * 2**20); del block  # a 16 MB block freed: glibc's own threshold rises past 8 MB
before = anon_mb()
kept, large = [], []
for _ in range(40):
    large.append(torch.ones(2 * 2**20))  # 8 MB each, touched
    kept.append(torch.ones(2**14))  # 64 KB that stay, so the heap cannot shrink from its top
del large
print(anon_mb() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists() or not sys.platform.startswith("linux"), reason="reads Linux's /proc")
def test_large_freed_blocks_go_back_to_the_system_once_a_model_loads(tmp_path):
    """load() fixes glibc's mmap threshold: 320 MB of freed 8 MB blocks are handed back, where
    glibc's default (its threshold raised by an earlier 16 MB block) keeps them in the process."""
    def retained(*args: str) -> int:
        done = subprocess.run([sys.executable, "-c", HEAP_PROBE, *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-500:]
        return int(done.stdout.split()[-1])
    from lantern.runtime.loader import _libc
    if _libc is None or not hasattr(_libc, "mallopt"):
        pytest.skip("not glibc")
    make_random_checkpoint(tmp_path / "tiny", "tiny")
    assert retained() > 200  # the probe can tell: without a model loaded, glibc's default keeps the blocks
    assert retained(str(tmp_path / "tiny")) < 40
