"""The inputs that wedged a node (issue 14), sent to a real `covey node join` process on 127.0.0.1 with the
bundled SmolLM2: each is refused with a typed error that names the limit, the node serves the next request,
and SIGTERM in the middle of a generation ends the process promptly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from covey.device_node.service import collect
from covey.errors import CoveyError, NodeUnavailable, PromptTooLong, RequestTooLarge
from covey.orchestrator.client import GrpcNodeClient
from covey.types import GenerateRequest, Message, ModelId, RequestId, Sampling, TokenPiece

from .conftest import SMOLLM
from .test_cli_join import Join

MARKERS = "<|im_start|><|im_end|>"
EXIT_BOUND_S = 10.0  # a correctness bound, far above the expected second or two


def request(**kw) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("wedge"), model_id=ModelId(SMOLLM),
                           sampling=Sampling(temperature=0.0, seed=0), **kw)


def markers_prompt() -> GenerateRequest:
    return request(messages=(Message(role="user", content=MARKERS * (1_000_000 // len(MARKERS))),))


class NodeProcess:
    def __init__(self, join: Join) -> None:
        self.join = join
        line = next(x for x in join.ready() if " serving on " in x)
        host, port = line.split(" serving on ")[1].split(":")[:2]
        self.address = f"{host}:{port}"

    async def outcome(self, req: GenerateRequest) -> tuple[str, object]:
        client = GrpcNodeClient(self.address)
        try:
            return await collect(client.generate(req))
        finally:
            await client.close()

    async def refusal(self, req: GenerateRequest) -> CoveyError:
        with pytest.raises(CoveyError) as exc:
            await self.outcome(req)
        return exc.value

    async def serves(self) -> bool:
        _, final = await self.outcome(request(prompt="The sky is", max_tokens=4))
        return final.completion_tokens > 0  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """One llama.cpp thread: spinning thread pools crawl on a machine whose cores are shared."""
    monkeypatch.setenv("COVEY_NODE__N_THREADS", "1")


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[NodeProcess]:
    join = Join(tmp_path / "data")
    try:
        yield NodeProcess(join)
    finally:
        err = join.stop()
        assert "Traceback" not in err, err


async def test_wedge_inputs_are_refused_before_any_work_and_the_node_serves_the_next(
        node_process: NodeProcess) -> None:
    refused = await node_process.refusal(markers_prompt())
    assert type(refused) is PromptTooLong, refused
    chars = len(markers_prompt().messages[0].content)
    assert f"{chars:,} characters" in str(refused) and "max_prompt_chars" in str(refused)
    assert await node_process.serves()

    many = request(messages=tuple(Message(role="user", content="word") for _ in range(200_000)))
    refused = await node_process.refusal(many)
    assert type(refused) is RequestTooLarge, refused
    assert "200,000 messages" in str(refused) and "max_messages" in str(refused)
    assert await node_process.serves()

    huge = request(prompt="x" * (5 * 1024 * 1024))  # over gRPC's limit: refused before it is even decoded
    refused = await node_process.refusal(huge)
    assert type(refused) is RequestTooLarge and "too large" in str(refused), refused
    assert await node_process.serves()


async def test_a_million_characters_of_markers_allowed_in_is_tokenised_as_text_and_refused_by_the_context(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVEY_NODE__MAX_PROMPT_CHARS", "2000000")
    join = Join(tmp_path / "data")
    try:
        node = NodeProcess(join)
        refused = await node.refusal(markers_prompt())
        assert type(refused) is PromptTooLong and "-token context" in str(refused), refused
        assert await node.serves()
    finally:
        assert "Traceback" not in join.stop()


async def test_sigterm_mid_generation_ends_the_process_and_the_client_hears_node_unavailable(
        node_process: NodeProcess) -> None:
    proc = node_process.join.proc
    client = GrpcNodeClient(node_process.address)
    story = Message(role="user", content="Write a very long story about the sea, chapter by chapter.")
    stream = client.generate(request(messages=(story,), max_tokens=2000))
    try:
        assert isinstance(await anext(stream), TokenPiece)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        with pytest.raises(NodeUnavailable):
            async for _ in stream:
                pass
        try:
            rc = await asyncio.to_thread(proc.wait, EXIT_BOUND_S - (time.monotonic() - t0))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the node was still running {EXIT_BOUND_S:g} s after SIGTERM")
    finally:
        await stream.aclose()
        await client.close()
    assert rc == 0


def test_sigterm_while_the_model_loads_ends_the_process(tmp_path: Path) -> None:
    join = Join(tmp_path / "data", "-v")  # a fresh data dir: the first load also runs the canary child
    deadline = time.monotonic() + 120
    while not any("energy:" in line for line in join._err):  # logged just before the models load
        assert join.proc.poll() is None and time.monotonic() < deadline, "the node never began loading"
        time.sleep(0.05)
    join.proc.send_signal(signal.SIGTERM)
    try:
        rc = join.proc.wait(EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the node was still running {EXIT_BOUND_S:g} s after SIGTERM")
    err = join.stop()
    assert "Traceback" not in err, err
    assert rc == 0 or "did not stop within" in err, (rc, err)  # stopped, or the watchdog said why it had to
