"""Training the verifier's cross-encoder: a tiny seeded run is reproducible byte for byte, an
interrupted run resumed from its checkpoint ends in the same bytes, bad rows and a foreign
checkpoint get one clear error, and long evidence is scored by its best window."""

import hashlib
import json

import pytest

from lantern.verify.train import TrainOptions, TrainedVerifier, chunk_evidence, read_pairs, train

PAIRS = [
    {"claim": "The bridge is 120 metres long.", "evidence": "The bridge spans 120 metres across the river.", "label": "supported"},
    {"claim": "The bridge is 300 metres long.", "evidence": "The bridge spans 120 metres across the river.", "label": "not_supported"},
    {"claim": "The museum opened in 1990.", "evidence": "The museum first opened its doors in 1990.", "label": "supported"},
    {"claim": "The museum opened in 2005.", "evidence": "The museum first opened its doors in 1990.", "label": "not_supported"},
    {"claim": "Ouro loops four times.", "evidence": "Ouro applies its layers four times per token.", "label": "supported"},
    {"claim": "Ouro loops ten times.", "evidence": "Ouro applies its layers four times per token.", "label": "not_supported"},
]
TINY = TrainOptions(epochs=2, batch_size=2, max_length=32, checkpoint_every=2, threads=1)


def weights_digest(folder) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_a_seeded_run_is_reproducible_and_a_resumed_run_ends_the_same(tmp_path):
    first = train(PAIRS, tmp_path / "a", TINY, progress=False)
    second = train(PAIRS, tmp_path / "b", TINY, progress=False)
    assert weights_digest(first) == weights_digest(second)
    assert train(PAIRS, tmp_path / "c", TINY, progress=False, stop_after=3) is None  # interrupted after 3 of 6 steps
    assert (tmp_path / "c" / "checkpoint.pt").exists() and not (tmp_path / "c" / "model").exists()
    resumed = train(PAIRS, tmp_path / "c", TINY, progress=False)
    assert weights_digest(resumed) == weights_digest(first)
    scores = TrainedVerifier(first, max_length=32).scores([p["claim"] for p in PAIRS], [p["evidence"] for p in PAIRS])
    assert len(scores) == len(PAIRS) and all(0.0 < s < 1.0 for s in scores)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    train(PAIRS, tmp_path / "run", TINY, progress=False, stop_after=1)
    with pytest.raises(ValueError, match="belongs to another run"):
        train(PAIRS[:4], tmp_path / "run", TINY, progress=False)


def test_bad_rows_name_their_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"claim": "x", "evidence": "y", "label": "maybe"}) + "\n")
    with pytest.raises(ValueError, match=r"pairs.jsonl:2: .*supported or not_supported"):
        read_pairs(path)


def test_long_evidence_is_cut_into_windows_of_whole_sentences():
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(100)]
    windows = chunk_evidence(" ".join(sentences), max_words=50)
    assert len(windows) == 15 and all(len(w.split()) <= 50 for w in windows)
    assert " ".join(windows) == " ".join(sentences)
    assert chunk_evidence(["One.", "Two."], max_words=1) == ["One.", "Two."]


def test_lantern_verifier_train_trains_and_bad_files_get_one_line(tmp_path, capsys, isolated_home):
    from lantern.cli import main

    def run(*args):
        try:
            main(list(args))
        except SystemExit as exc:
            return exc.code or 0, *capsys.readouterr()
        return 0, *capsys.readouterr()

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    code, out, _ = run("verifier", "train", str(pairs), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "3",
                       "--max-length", "32", "--threads", "1")
    assert code == 0 and "trained on 6 pairs" in out and (tmp_path / "run" / "model" / "model.safetensors").exists()
    from lantern.verify.judge import CrossEncoderJudge

    assert 0.0 < CrossEncoderJudge(str(tmp_path / "run" / "model"))(PAIRS[0]["claim"], PAIRS[0]["evidence"]) < 1.0  # the verifier_model setting loads it
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    code, _, err = run("verifier", "train", str(broken), "--out", str(tmp_path / "run2"))
    assert code == 1 and err.count("\n") == 1 and "cannot read the training pairs" in err
