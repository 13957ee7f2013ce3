"""`covey ask` through a `covey serve` already running on this machine, as `ollama run` uses `ollama serve`.

A warm server has the router, the graph and the models loaded, so an answer costs the CLI's own start
(about half a second) instead of building an orchestrator in every process. The server leaves
DATA_DIR/run/serve.json (its loopback URL and pid) while it listens; `covey ask` with the same data
dir reads it, and answers in-process as before when there is no such server, it is not on loopback,
it needs a key, or it cannot be reached. The events are covey's own (Token, Notice, AnswerResult),
rebuilt from the stream's `covey` extension, so the answer prints exactly as an in-process one.

Only the standard library and httpx are imported here: this is the fast path.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

FILE = Path("run") / "serve.json"
RESULT_HEADER = "x-covey-result"  # asks the server to put the whole AnswerResult in the last chunk


def advertise(data_dir: Path, url: str, *, keys: bool, discover: bool = False) -> Path:
    """Write DATA_DIR/run/serve.json for this process (atomically, owner-only). `discover`: whether the
    server browses the LAN (an ask with --no-discover does not use one that does)."""
    path = Path(data_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": url, "pid": os.getpid(), "keys": keys, "discover": discover}, f)
    os.replace(tmp, path)
    return path


def withdraw(path: Path) -> None:
    """Remove the file if it is still this process's (a newer server may have replaced it)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def find(data_dir: Path, *, discover: bool | None = None) -> str | None:
    """The base URL (…/v1) of a live, keyless `covey serve` on loopback for this data dir, else None.
    With discover=False, a server that browses the LAN is not used."""
    path = Path(data_dir) / FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        url, pid, keys = str(info["url"]), int(info["pid"]), bool(info.get("keys"))
        browses = bool(info.get("discover", True))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("ignoring %s (%s)", path, exc)
        return None
    if keys or urlsplit(url).hostname not in ("127.0.0.1", "::1", "localhost"):
        return None
    if discover is False and browses:
        logger.info("not using the covey serve at %s: it browses the LAN and this ask says --no-discover", url)
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        logger.info("ignoring %s: server %d is gone", path, pid)
        return None
    except PermissionError:  # another user's server: not ours to use
        return None
    return url


class Unreachable(Exception):
    """The server could not be reached before any answer began: answer in-process instead."""


async def stream(url: str, prompt: str, *, session: str | None = None,
                 timeout_s: float = 600.0) -> AsyncIterator[Any]:
    """covey's events for one answer from the server at `url`. Raises Unreachable before the first event
    when the server is not there (or refuses the request for a reason a local answer would not have)."""
    import httpx

    body: dict[str, Any] = {"model": "covey-auto", "stream": True,
                            "messages": [{"role": "user", "content": prompt}]}
    if session:
        body["session"] = session
    timeout = httpx.Timeout(timeout_s, connect=2.0)
    started = False
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            async with client.stream("POST", f"{url}/chat/completions", json=body,
                                     headers={RESULT_HEADER: "1"}) as resp:
                if resp.status_code in (401, 403, 404, 429, 503):
                    raise Unreachable(f"the server answered {resp.status_code}")
                if resp.status_code >= 400:
                    await resp.aread()
                    raise _error(resp.json() if resp.content else {}, resp.status_code)
                async for event in _events(resp.aiter_lines()):
                    started = True
                    yield event
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unreachable(str(exc)) from exc
    except httpx.HTTPError as exc:
        if not started:
            raise Unreachable(str(exc)) from exc
        from covey.errors import NodeUnavailable

        raise NodeUnavailable(f"the local covey serve at {url} stopped mid-answer ({exc})",
                              hint="ask again; it answers in-process when no server is running") from exc


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[Any]:
    from covey.orchestrator.results import AnswerResult, Notice, Token

    attempt = 0
    async for line in lines:
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        if "error" in chunk:
            raise _error(chunk, 500)
        ext = chunk.get("covey") or {}
        if "notice" in ext:
            yield Notice(**ext["notice"])
            continue
        if "attempt" in ext:
            attempt = int(ext["attempt"])
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield Token(text=text, attempt=attempt)
        if "result" in ext:
            yield AnswerResult.model_validate(ext["result"])


def _error(envelope: dict, status: int):
    from covey.errors import CoveyError

    err = envelope.get("error") or {}
    message = err.get("message") or f"the local covey serve answered HTTP {status}"
    return CoveyError(message, hint="")  # the message already carries covey's hint
