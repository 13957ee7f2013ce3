"""`covey ask` through a running `covey serve`: finding it, and covey's own events rebuilt from its stream."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from covey.api import local
from covey.api.app import create_app
from covey.errors import CoveyError, NoCapableNode
from covey.orchestrator.results import AnswerResult, Notice, Token

from scripted import ScriptedBackend, result, running


def write(data_dir: Path, **info) -> Path:
    path = data_dir / local.FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_find_uses_only_a_live_keyless_loopback_server(tmp_path: Path) -> None:
    assert local.find(tmp_path) is None  # no file
    url = "http://127.0.0.1:8088/v1"
    write(tmp_path, url=url, pid=os.getpid(), keys=False, discover=False)
    assert local.find(tmp_path) == url and local.find(tmp_path, discover=False) == url
    write(tmp_path, url=url, pid=os.getpid(), keys=False, discover=True)  # it browses the LAN
    assert local.find(tmp_path) == url and local.find(tmp_path, discover=False) is None
    write(tmp_path, url=url, pid=dead_pid(), keys=False)
    assert local.find(tmp_path) is None
    write(tmp_path, url=url, pid=os.getpid(), keys=True)
    assert local.find(tmp_path) is None
    write(tmp_path, url="http://192.168.1.5:8088/v1", pid=os.getpid(), keys=False)
    assert local.find(tmp_path) is None
    (tmp_path / local.FILE).write_text("{garbled", encoding="utf-8")
    assert local.find(tmp_path) is None
    write(tmp_path, url=url)  # no pid
    assert local.find(tmp_path) is None


def test_advertise_is_owner_only_and_withdraw_leaves_a_newer_servers_file(tmp_path: Path) -> None:
    path = local.advertise(tmp_path, "http://127.0.0.1:1/v1", keys=False)
    assert path.stat().st_mode & 0o777 == 0o600 and local.find(tmp_path) == "http://127.0.0.1:1/v1"
    local.withdraw(path)
    assert not path.exists()
    write(tmp_path, url="http://127.0.0.1:2/v1", pid=os.getpid() + 1, keys=False)  # another server took over
    local.withdraw(tmp_path / local.FILE)
    assert (tmp_path / local.FILE).exists()


async def test_the_stream_gives_back_covey_events_and_the_whole_result() -> None:
    backend = ScriptedBackend(words=("Hel", "lo", "!"), notices={1: Notice(kind="escalate", text="unsure")},
                              restart_at=1)
    async with running(create_app(backend)) as url:
        events = [ev async for ev in local.stream(url + "/v1", "hi", session="s1")]
    tokens = [ev for ev in events if isinstance(ev, Token)]
    assert [(t.text, t.attempt) for t in tokens] == [("Hel", 0), ("lo", 1), ("!", 1)]
    assert [ev for ev in events if isinstance(ev, Notice)] == [Notice(kind="escalate", text="unsure")]
    assert isinstance(events[-1], AnswerResult) and events[-1] == result("Hello!", "s1")
    assert backend.seen[0]["session_id"] == "s1" and backend.seen[0]["history"] is None  # the stored one


async def test_no_server_or_a_refusal_before_the_answer_means_answer_here() -> None:
    with pytest.raises(local.Unreachable):
        await anext(local.stream("http://127.0.0.1:9/v1", "hi"))
    async with running(create_app(ScriptedBackend(error=NoCapableNode("no node serves it")))) as url:
        with pytest.raises(local.Unreachable, match="503"):
            await anext(local.stream(url + "/v1", "hi"))


async def test_an_error_mid_answer_is_a_covey_error_with_the_servers_message() -> None:
    backend = ScriptedBackend(words=("a", "b", "c"), error=CoveyError("the node went away", hint="ask again"),
                              error_after=2)
    async with running(create_app(backend)) as url:
        seen = []
        with pytest.raises(CoveyError, match="the node went away; ask again"):
            async for ev in local.stream(url + "/v1", "hi"):
                seen.append(ev)
    assert [t.text for t in seen] == ["a", "b"]


async def test_covey_ask_prints_the_servers_answer_as_its_own(tmp_path: Path) -> None:
    backend = ScriptedBackend(words=("Hello", " world"), notices={0: Notice(kind="delegate", text="sent to den")})
    async with running(create_app(backend)) as url:
        local.advertise(tmp_path, url + "/v1", keys=False)
        env = {**os.environ, "COVEY_ORCHESTRATOR__DISCOVER": "false", "HF_HUB_OFFLINE": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "covey.cli", "ask", "--no-discover", "--data-dir", str(tmp_path), "hi there",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        proc_json = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "covey.cli", "ask", "--json", "--data-dir", str(tmp_path), "hi",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out_json, err_json = await asyncio.wait_for(proc_json.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == "Hello world\n"
    lines = err.decode().replace("\n  ", " ").splitlines()  # each line whole again (wrapped at 80, indented)
    assert lines[0] == "— sent to den —" and "note: note one" in lines and lines[-1].startswith("den · ")
    assert proc_json.returncode == 0, err_json.decode()
    doc = json.loads(out_json)
    assert doc["text"] == "Hello world" and doc["notices"] == [{"kind": "delegate", "text": "sent to den"}]
    assert [p["prompt"] for p in backend.seen] == ["hi there", "hi"]
