"""A real `covey serve` process with the embedded SmolLM2 on 127.0.0.1: the README snippet, streaming,
embeddings from the real MiniLM, metrics, and the API's turns in `covey logs`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import pytest

README = Path(__file__).resolve().parents[3] / "README.md"
SMOLLM = "smollm2-135m-instruct-q4_1"


def readme_snippet() -> str:
    text = README.read_text()
    block = text.split("<!-- serve-snippet -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture()
def server(covey_env, smollm_path):
    env = {**os.environ, "COVEY_NODE__SELF_BENCHMARK": "false", "COVEY_NODE__N_THREADS": "1",
           "COVEY_ORCHESTRATOR__EMBEDDED_MODEL": SMOLLM, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "covey.cli", "serve", "--port", "0", "--no-discover",
                             "--embedded", "always"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if line.strip() == "ready":
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert ready.wait(240) and proc.poll() is None, lines
        url = next(l.split()[1] for l in lines if l.startswith("serving "))
        assert url.startswith("http://127.0.0.1:"), lines
        yield url, env, lines
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_real_serve_with_the_embedded_node(server, capsys):
    url, env, lines = server
    assert "no API key needed on loopback" in "\n".join(lines) and SMOLLM in "\n".join(lines)

    code = readme_snippet().replace("http://127.0.0.1:8088/v1", url)
    exec(compile(code, "README.md snippet", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    # The reply (it may span lines: the chat agent samples) and its token count, then the covey extension.
    assert len(out) >= 2 and out[0].strip() and out[-1].startswith("{'session'") and "'node': 'embedded'" in out[-1]

    c = openai.OpenAI(base_url=url, api_key="anything", max_retries=0, timeout=180)
    stream = c.chat.completions.create(model=SMOLLM, messages=[{"role": "user", "content": "Name a colour."}],
                                       stream=True, stream_options={"include_usage": True}, max_tokens=12,
                                       extra_body={"session": "api-test"})
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    usage = chunks[-1].usage
    ext = chunks[-1].model_extra["covey"]
    assert text.strip() and 0 < usage.completion_tokens <= 12 and usage.prompt_tokens > 0
    assert ext["node"] == "embedded" and ext["model"] == SMOLLM and ext["joules"] > 0
    assert ext["joules_low"] <= ext["joules"] <= ext["joules_high"] and ext["g_co2e"] > 0

    emb = c.embeddings.create(model="covey-embed", input=["a cat on a mat", "a dog"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 384

    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    metrics = httpx.get(url.removesuffix("/v1") + "/metrics").text
    assert re.search(r'covey_answers_total\{node="embedded",route="\w+"\} [12]\.0', metrics), metrics

    logs = subprocess.run([sys.executable, "-m", "covey.cli", "logs", "--json", "--session", "api-test"],
                          capture_output=True, text=True, env=env, timeout=60)
    [turn] = json.loads(logs.stdout)
    assert turn["prompt"] == "Name a colour." and turn["answer"] == text and turn["model"] == SMOLLM
