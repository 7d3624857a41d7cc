"""The real `lantern chat` in a real terminal: tmux (on a private server) runs the installed
command against an ingested knowledge base; the test types a question, reads the screen until the
answer and its source file are there, opens the source, and quits, checking the exit status."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted import DOCS, ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed; this test needs a real terminal")


def lantern_command() -> str:
    script = Path(sys.executable).parent / "lantern"
    return str(script) if script.exists() else f"{sys.executable} -m lantern"


class Terminal:
    """One tmux session on a server of its own (its socket in the test's folder), so the user's
    tmux is never touched."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=20, cwd=ROOT).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "chat")

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{pattern!r} never appeared within {timeout:.0f}s; the screen:\n{self.screen()}")


def test_lantern_chat_in_tmux_answers_shows_the_source_file_and_quits_cleanly(tmp_path):
    home, docs, exit_file = tmp_path / "home", tmp_path / "docs", tmp_path / "exit-status"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(docs)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    terminal = Terminal(tmp_path / "tmux.sock")
    # COLUMNS and LINES (set under pytest) would override the terminal's real size for the app.
    command = (f"env -u COLUMNS -u LINES LANTERN_HOME={home} LANTERN_BUILTIN_TOOLS=false HF_HUB_OFFLINE=1 {lantern_command()} chat --session tmux; "
               f"echo $? > {exit_file}")
    terminal.tmux("new-session", "-d", "-s", "chat", "-x", "140", "-y", "45", command)
    try:
        terminal.wait_for(r"Ask a question and press Enter", 60)
        terminal.tmux("send-keys", "-t", "chat", "When does Ouro stop looping?", "Enter")
        screen = terminal.wait_for(r"(answered|partial) \d+\.\ds", 180)  # the stage bar, once the answer is verified
        assert "ouro.md:" in screen and "supported" in screen and "When does Ouro stop looping?" in screen
        terminal.tmux("send-keys", "-t", "chat", "C-o")  # the first claim's source, at its quote
        screen = terminal.wait_for(r"Close source", 30)
        assert re.search(r"ouro\.md:\d", screen) and "cumulative exit probability" in screen
        terminal.tmux("send-keys", "-t", "chat", "Escape")
        terminal.tmux("send-keys", "-t", "chat", "C-q")
        deadline = time.monotonic() + 30
        while not (exit_file.exists() and exit_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert exit_file.read_text().strip() == "0"
    finally:
        terminal.tmux("kill-server")
    assert (home / "sessions" / "tmux.jsonl").exists()  # the answer was saved for `lantern ask --session tmux`
