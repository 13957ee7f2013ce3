"""The README's `covey chat` line, run for real under tmux at 80x24 against the embedded SmolLM2.

tmux plays the person: send-keys types a question, capture-pane reads the screen until the answer
and its summary line are there, then Ctrl+Q quits and the chat's exit status must be 0.
Discovery is off (the README line says --no-discover) and the data dir is the test's own.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"
SRC = README.parent / "src"
QUESTION = "What is the capital of France?"


def readme_chat_command() -> list[str]:
    """The command of the README's chat snippet, run with this interpreter (`covey` -> `python -m covey`)."""
    block = README.read_text().split("<!-- chat-snippet -->", 1)[1]
    code = re.search(r"```sh\n(.*?)```", block, re.S).group(1)
    line = next(ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    args = shlex.split(line, comments=True)
    assert args[0] == "covey" and args[1] == "chat", line
    assert "--no-discover" in args, "the README's chat line must not browse the LAN"
    return [sys.executable, "-m", "covey", *args[1:]]


class Tmux:
    def __init__(self, tmp: Path) -> None:
        self.tmux = shutil.which("tmux")
        assert self.tmux, "tmux is not installed: `make system-deps` installs it"
        self.socket = str(tmp / f"tmux-{uuid.uuid4().hex[:8]}.sock")  # a server of our own, in the test's folder
        self.conf = tmp / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n")

    def __call__(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-S", self.socket, "-f", str(self.conf), *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "chat")

    def wait(self, what, timeout: float, about: str) -> str:
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if what(screen):
                return screen
            time.sleep(0.5)
        raise AssertionError(f"{about} never showed; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run([self.tmux, "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


def test_covey_chat_under_tmux_answers_and_quits_cleanly(tmp_path: Path, smollm_path) -> None:
    data = tmp_path / "data"
    env = {"PYTHONPATH": str(SRC), "COVEY_DATA_DIR": str(data), "COVEY_ORCHESTRATOR__DISCOVER": "false",
           "COVEY_NODE__ANNOUNCE": "false", "COVEY_NODE__N_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "COVEY_ORCHESTRATOR__EMBEDDED_EXTRA_MODELS": "[]", "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    # The shell in the pane writes the chat's exit status to a file: tmux 3.3a sometimes leaves an exited
    # pane process unreaped (a zombie, no #{pane_dead_status}), so tmux cannot be asked for it reliably.
    status = tmp_path / "exit-status"
    command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(
        readme_chat_command()) + f"; echo $? > {shlex.quote(str(status))}"
    tmux = Tmux(tmp_path)
    try:
        tmux("new-session", "-d", "-s", "chat", "-x", "80", "-y", "24", "-c", str(tmp_path), command)
        tmux.wait(lambda s: "Ask covey" in s, 300, "the chat's input")
        tmux("send-keys", "-t", "chat", "-l", "Q")  # the input has the focus once what is typed shows in it
        tmux.wait(lambda s: re.search(r"▊ Q\s", s), 30, "a key typed into the input")
        tmux("send-keys", "-t", "chat", "BSpace")
        tmux.wait(lambda s: "Ask covey" in s, 30, "the emptied input")
        tmux("send-keys", "-t", "chat", QUESTION, "Enter")  # in one burst, as a fast typist or a paste sends it
        screen = tmux.wait(lambda s: "gCO2e" in s and "1 answer" in s, 300, "the summary line")
        assert re.search(r"→ \w+ · embedded · smollm2-135m-instruct-q4_1", screen), screen
        assert re.search(r"\d+ in / \d+ out · \d+ tok/s · [\d.]+ J \([\d.]+-[\d.]+, (estimated|measured)\) · "
                         r"[\d.e-]+ gCO2e", screen), screen
        tmux("send-keys", "-t", "chat", "C-q")
        tmux.wait(lambda s: status.is_file() and status.read_text().strip() != "", 60, "the chat's exit status")
        code = int(status.read_text())
        assert code == 0, (f"exit status {code}" + (f" (signal {code - 128})" if code > 128 else ""), tmux.screen())
    finally:
        tmux.close()
    from covey.history.store import HistoryStore

    store = HistoryStore(data / "history.db")
    try:
        turns = store.search(limit=None)
    finally:
        store.close()
    assert [t.prompt for t in turns] == [QUESTION] and turns[0].answer.strip() and turns[0].node == "embedded"
    words = [w for w in re.findall(r"[A-Za-z]{4,}", turns[0].answer)]
    assert any(w in screen for w in words), f"none of the answer's words is on screen:\n{screen}"
