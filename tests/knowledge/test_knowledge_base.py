"""The knowledge base end to end: real LanceDB, the offline MiniLM embedder, real files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lantern.errors import KnowledgeBaseError
from lantern.knowledge import KnowledgeBase, retrieve
from lantern.settings import load_settings

DOCS = {
    "loops.md": "# Looped models\n\nOuro applies the same layers four times per token.\n\n## Exit\n\nAn exit gate decides when the model stops looping.\n",
    "cats.txt": "Cats sleep for most of the day.\nThey like warm windows.\n",
    "sub/deep.md": "# Deep\n\nLanceDB stores vectors on local disk without a server.\n",
}


def write_docs(root: Path, docs=DOCS) -> Path:
    for name, text in docs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def kb():
    return KnowledgeBase.open(load_settings())


def test_ingest_then_search_finds_the_right_span(kb, tmp_path):
    docs = write_docs(tmp_path / "docs")
    report = kb.ingest([docs])
    assert len(report.added) == 3 and not report.failed and report.chunks == kb.count() == 4
    hit = kb.search("when does the model stop looping?", k=1)[0]
    assert hit.source == str(docs / "loops.md") and (hit.start_line, hit.end_line) == (5, 7)
    lines = (docs / "loops.md").read_text().split("\n")
    assert hit.text == "\n".join(lines[hit.start_line - 1 : hit.end_line])
    assert kb.source_text(hit.source) == (docs / "loops.md").read_text()
    for mode in ("vector", "text", "hybrid"):
        assert kb.search("cats sleep warm windows", k=1, mode=mode)[0].source.endswith("cats.txt")
    assert retrieve("vectors on local disk", 1)[0].source.endswith("deep.md")


def test_reingest_skips_unchanged_replaces_changed_and_prunes_deleted(kb, tmp_path):
    docs = write_docs(tmp_path / "docs")
    kb.ingest([docs])
    again = kb.ingest([docs])
    assert len(again.unchanged) == 3 and again.chunks == 0
    (docs / "cats.txt").write_text("Dogs bark at the postman.\n")
    (docs / "sub" / "deep.md").unlink()
    report = kb.ingest([docs])
    assert report.updated == [str(docs / "cats.txt")] and report.removed == [str(docs / "sub" / "deep.md")]
    texts = [hit.text for hit in kb.search("animals", k=10)]
    assert "Dogs bark at the postman." in texts and not any("Cats sleep" in t for t in texts)
    assert not any("LanceDB" in t for t in texts)
    assert {Path(f.path).name for f in kb.files()} == {"loops.md", "cats.txt"}


def test_bad_files_are_reported_and_the_rest_is_ingested(kb, tmp_path):
    docs = write_docs(tmp_path / "docs")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02")
    report = kb.ingest([docs, tmp_path / "missing.md"])
    reasons = {Path(p).name: r for p, r in report.failed}
    assert set(reasons) == {"broken.pdf", "blob.txt", "missing.md"}
    assert "corrupt PDF" in reasons["broken.pdf"] and "binary" in reasons["blob.txt"]
    assert len(report.added) == 3
    assert report.named_failures([str(docs), str(tmp_path / "missing.md")]) == [(str(tmp_path / "missing.md"), "no such file or directory")]


def test_files_of_other_types_in_a_folder_are_counted_not_failed(kb, tmp_path):
    docs = write_docs(tmp_path / "docs")
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (docs / "sub" / "archive.zip").write_bytes(b"PK\x03\x04")
    report = kb.ingest([docs])
    assert report.ignored == 2 and not report.failed and len(report.added) == 3
    named = kb.ingest([docs / "photo.jpg"])
    assert [Path(p).name for p, _ in named.named_failures([str(docs / "photo.jpg")])] == ["photo.jpg"]


def test_cli_ingest_exits_non_zero_when_a_named_path_fails_but_keeps_the_rest(tmp_path, capsys):
    from lantern.cli import main

    docs = write_docs(tmp_path / "docs")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")

    def run(*args):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        return code, *capsys.readouterr()

    code, out, err = run("ingest", str(docs), str(tmp_path / "typo"))
    assert code == 1 and "3 added" in out
    assert err.strip().splitlines()[-1].startswith("error: ") and "typo" in err.strip().splitlines()[-1]
    assert "broken.pdf: corrupt PDF" in err
    code, out, err = run("ingest", str(docs))  # a bad file met inside a folder is reported, not fatal
    assert code == 0 and "3 unchanged, 0 removed, 1 failed" in out
    code, out, err = run("search", "cats", "-k", "0")
    assert code == 1 and err.startswith("error: ") and "1 or more" in err and err.count("\n") == 1
    code, out, err = run("search", "zebras quantum", "--mode", "text")  # no word of it in any file
    assert code == 0 and out.strip() == "No passage matches 'zebras quantum' (text search needs a word of the query in a passage; try --mode hybrid)."
    code, out, err = run("search", "zebras quantum", "--mode", "text", "--json")
    assert code == 0 and out.strip() == "[]"


def test_kb_rm_removes_a_file_or_a_folder(kb, tmp_path):
    docs = write_docs(tmp_path / "docs")
    kb.ingest([docs])
    assert kb.remove(docs / "sub") == [str(docs / "sub" / "deep.md")]
    assert kb.count() == 3
    with pytest.raises(KnowledgeBaseError, match="not in the knowledge base"):
        kb.remove(docs / "sub")


def test_a_different_embedder_is_never_mixed_in(kb, tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs")
    kb.ingest([docs])
    other = KnowledgeBase.open(load_settings({"embed_model": "sentence-transformers/all-MiniLM-L6-v2"}))
    with pytest.raises(KnowledgeBaseError, match="re-embed"):
        other.search("cats")
    report = other.ingest([docs])
    assert report.reembedded == 4 and len(report.unchanged) == 3
    assert other.search("cats sleep", k=1)[0].source.endswith("cats.txt")
    assert len([t for t in other.store.table_names() if t.startswith("chunks__")]) == 1


def _versions(home: Path) -> int:
    folder = home / "kb.lancedb" / "files.lance" / "_versions"
    return len(list(folder.glob("*"))) if folder.exists() else 0


def test_a_killed_ingest_loses_nothing_and_a_rerun_finishes(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, LANTERN_HOME=str(home), LANTERN_INGEST_BATCH="4")
    first = write_docs(tmp_path / "first")
    cli = [sys.executable, "-m", "lantern"]
    subprocess.run(cli + ["ingest", str(first)], env=env, check=True, capture_output=True)
    many = tmp_path / "many"
    for i in range(120):
        write_docs(many, {f"doc{i:03d}.md": f"# Note {i}\n\nParagraph {i} about topic {i % 7}.\n\nSecond part of note {i}.\n"})
    before = _versions(home)
    proc = subprocess.Popen(cli + ["ingest", str(many)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _versions(home) < before + 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kb = KnowledgeBase.open(load_settings({"home": home}))
    stored = {Path(f.path).name for f in kb.files()}
    assert {"loops.md", "cats.txt", "deep.md"} <= stored and 3 < len(stored) < 123
    assert kb.search("cats sleep", k=1)[0].source.endswith("cats.txt")
    done = subprocess.run(cli + ["ingest", str(many), "--json"], env=env, check=True, capture_output=True, text=True)
    summary = json.loads(done.stdout)
    assert len(summary["added"]) == 123 - len(stored) and not summary["failed"]
    kb = KnowledgeBase.open(load_settings({"home": home}))
    assert len(kb.files()) == 123 and kb.count() == 4 + 120
    assert len({hit.chunk_id for hit in kb.search("note", k=200, mode="text")}) == len(kb.search("note", k=200, mode="text"))


def test_ctrl_c_stops_ingest_with_exit_code_130_and_keeps_what_was_written(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, LANTERN_HOME=str(home), LANTERN_INGEST_BATCH="4")
    many = tmp_path / "many"
    for i in range(120):
        write_docs(many, {f"doc{i:03d}.md": f"# Note {i}\n\nParagraph {i} about topic {i % 7}.\n"})
    cli = [sys.executable, "-m", "lantern"]
    # The child starts with Ctrl-C at its default: a test run started in the background (`cmd &` in a
    # script) has SIGINT ignored, children inherit that, and Python then leaves it ignored.
    proc = subprocess.Popen(cli + ["ingest", str(many)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while _versions(home) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "ingest finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in err and "Run the same command again" in err and "Traceback" not in err
    kept = len(KnowledgeBase.open(load_settings({"home": home})).files())
    done = subprocess.run(cli + ["ingest", str(many), "--json"], env=env, check=True, capture_output=True, text=True)
    assert len(json.loads(done.stdout)["added"]) == 120 - kept


def test_a_pluggable_reranker_reorders_results(kb, tmp_path):
    docs = write_docs(tmp_path / "docs")
    kb.ingest([docs])

    class PreferCats:
        def rerank(self, query, hits):
            return sorted(hits, key=lambda h: "Cats" not in h.text)

    kb.reranker = PreferCats()
    assert kb.search("vectors on local disk", k=1)[0].source.endswith("cats.txt")
    broken = KnowledgeBase.open(load_settings({"reranker": str(tmp_path / "no-such-model")}))
    with pytest.raises(KnowledgeBaseError, match="reranker"):
        broken.search("cats")


def test_an_empty_query_is_an_error_not_arbitrary_results(kb, tmp_path):
    kb.ingest([write_docs(tmp_path / "docs")])
    with pytest.raises(KnowledgeBaseError, match="query is empty"):
        kb.search("   ")


def test_a_second_writer_waits_for_the_first_instead_of_failing(kb, tmp_path, isolated_home):
    """Two ingests at once: the second one's index rebuild hit a LanceDB commit conflict and crashed."""
    docs = write_docs(tmp_path / "docs")
    log = tmp_path / "second.err"
    with kb.writing():
        with log.open("w") as err:
            second = subprocess.Popen([sys.executable, "-m", "lantern", "ingest", str(docs), "--json"], stdout=subprocess.PIPE,
                                      stderr=err, text=True, env=dict(os.environ, LANTERN_HOME=str(isolated_home)))
        deadline = time.time() + 120
        while "waiting for it to finish" not in log.read_text() and second.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert second.poll() is None, "the second writer did not wait"
        assert "another `lantern ingest` or `kb rm` is writing" in log.read_text()
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0 and len(json.loads(out)["added"]) == 3
