"""Start-up of `lantern chat` to an interactive prompt, next to `lantern --version`, in one run.

Each start is a whole process in a real terminal: tmux (a private server, 140x45) runs the
command, and the clock stops when the screen shows what the user waits for, read by polling
`tmux capture-pane`: for `lantern chat`, the prompt's placeholder; for `lantern --version`, the
version line. The two commands alternate, `--runs` times each (default 5), against a
LANTERN_HOME holding the shipped kb/ (ingested first, not timed); the figures are medians and
their difference. `typed_echo_s` goes one step further for chat: a key is sent the moment the
prompt shows, and the clock stops when the prompt displays it (the app opens the knowledge base
and the embedder in a thread after its first frame; this shows the prompt still takes keys then).

    .venv/bin/python bench/tui_startup.py [--runs 5] [--home DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Ask a question and press Enter"
POLL_S = 0.01


class Terminal:
    """A private tmux server; panes stay after their command exits so a fast one can be read."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "keep", "sleep 3600")
        self.tmux("set-option", "-g", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30).stdout

    def start(self, name: str, command: str) -> None:
        self.tmux("new-session", "-d", "-s", name, "-x", "140", "-y", "45", command)

    def wait_for(self, name: str, test, timeout: float = 60.0) -> float:
        """perf_counter() when `test(screen)` first holds."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if test(self.tmux("capture-pane", "-p", "-t", name)):
                return time.perf_counter()
            time.sleep(POLL_S)
        raise RuntimeError(f"{name}: the screen never showed what was awaited within {timeout:.0f}s")

    def close(self, name: str, timeout: float = 60.0) -> None:
        """Wait for the pane's command to end (so no run shares the CPU with the last), then drop it."""
        deadline = time.perf_counter() + timeout
        while self.tmux("display-message", "-p", "-t", name, "#{pane_dead}").strip() != "1" and time.perf_counter() < deadline:
            time.sleep(0.05)
        self.tmux("kill-session", "-t", name)

    def shut(self) -> None:
        self.tmux("kill-server")


def lantern() -> str:
    script = ROOT / ".venv" / "bin" / "lantern"
    return str(script) if script.exists() else f"{sys.executable} -m lantern"


def environment(home: Path) -> str:
    # COLUMNS/LINES would override the pane's size; builtin tool servers start only with an answer anyway.
    return f"env -u COLUMNS -u LINES LANTERN_HOME={home} HF_HUB_OFFLINE=1"


def time_version(terminal: Terminal, home: Path, n: int) -> float:
    name = f"version{n}"
    began = time.perf_counter()
    terminal.start(name, f"{environment(home)} {lantern()} --version")
    seen = terminal.wait_for(name, lambda screen: "lantern " in screen)
    terminal.close(name)
    return seen - began


def time_chat(terminal: Terminal, home: Path, n: int) -> tuple[float, float]:
    """(seconds to the prompt, seconds until a key typed at that moment is shown)."""
    name = f"chat{n}"
    began = time.perf_counter()
    terminal.start(name, f"{environment(home)} {lantern()} chat")
    prompt = terminal.wait_for(name, lambda screen: PROMPT in screen)
    terminal.tmux("send-keys", "-t", name, "x")
    echoed = terminal.wait_for(name, lambda screen: PROMPT not in screen and "▊  x" in screen)
    terminal.tmux("send-keys", "-t", name, "C-q")
    terminal.close(name)
    return prompt - began, echoed - began


def ingest_kb(home: Path) -> None:
    done = subprocess.run([*lantern().split(), "--home", str(home), "ingest", str(ROOT / "kb")], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingesting kb/ failed: {done.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", help="an existing LANTERN_HOME (default: a temporary one with kb/ ingested)")
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is not installed; this benchmark starts the commands in a real terminal")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(args.home) if args.home else Path(scratch) / "home"
        if not args.home:
            ingest_kb(home)
        terminal = Terminal(Path(scratch) / "tmux.sock")
        try:
            time_version(terminal, home, 0)  # warm the file cache once for both
            time_chat(terminal, home, 0)
            version, chat, echo = [], [], []
            for n in range(1, args.runs + 1):
                version.append(time_version(terminal, home, n))
                to_prompt, to_echo = time_chat(terminal, home, n)
                chat.append(to_prompt)
                echo.append(to_echo)
        finally:
            terminal.shut()
    result = {
        "chat_to_prompt_s": round(statistics.median(chat), 3),
        "version_s": round(statistics.median(version), 3),
        "difference_s": round(statistics.median(chat) - statistics.median(version), 3),
        "typed_echo_s": round(statistics.median(echo), 3),
        "runs": {"chat": [round(x, 3) for x in chat], "version": [round(x, 3) for x in version], "typed_echo": [round(x, 3) for x in echo]},
        "machine": {"cpu_cores": os.cpu_count(), "gpu": None},
        "method": f"median of {args.runs} whole-process starts each, alternating, in tmux 140x45, polled every {POLL_S * 1000:.0f} ms",
    }
    if not args.json:
        print(f"lantern chat to prompt {result['chat_to_prompt_s']:.2f}s, lantern --version {result['version_s']:.2f}s, "
              f"difference {result['difference_s']:.2f}s (target <= 1.5s); a typed key shown after {result['typed_echo_s']:.2f}s",
              file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
