"""Faults at start-up on real parts: bad model files, the RAM cap, a port already taken; each refused
with a message naming the problem and the fix, and the node serving whatever it still can."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from covey.device_node.server import NodeServer
from covey.device_node.service import collect
from covey.errors import ModelFileError, ModelTooLarge, PortInUse
from covey.orchestrator.client import GrpcNodeClient
from covey.types import GenerateRequest, ModelId, RequestId, Sampling

from .conftest import SMOLLM, NodeThread

GEMMA = "gemma3-270m-q4_k_m"


@pytest.fixture
def random_bytes_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "random.gguf"
    path.write_bytes(os.urandom(64 * 1024))
    return path


@pytest.fixture
def truncated_gguf(tmp_path: Path, smollm_path: Path) -> Path:
    """The real SmolLM2 file cut to 20 MB: a valid GGUF header, tensors missing."""
    path = tmp_path / "truncated.gguf"
    with smollm_path.open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(20 * 1024 * 1024))
    return path


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 some other program is listening on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def start_node(tmp_path: Path, **node) -> NodeThread:
    n = NodeThread(tmp_path / "data", **node)
    try:
        return n.start()
    except BaseException:
        n.stop()
        raise


async def generates(address: str, model: str = SMOLLM) -> bool:
    client = GrpcNodeClient(address)
    try:
        req = GenerateRequest(request_id=RequestId("r"), model_id=ModelId(model), prompt="The sky is",
                              max_tokens=3, sampling=Sampling(temperature=0.0))
        _, final = await collect(client.generate(req))
        return final.completion_tokens > 0
    finally:
        await client.close()


def test_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ModelFileError) as exc:
        start_node(tmp_path, models=[str(missing)])
    msg = str(exc.value)
    assert str(missing) in msg and "does not exist" in msg and "point at another .gguf file" in msg


def test_random_bytes_gguf_is_a_clear_error(tmp_path: Path, random_bytes_gguf: Path) -> None:
    with pytest.raises(ModelFileError) as exc:
        start_node(tmp_path, models=[str(random_bytes_gguf)])
    msg = str(exc.value)
    assert str(random_bytes_gguf) in msg and "not a GGUF file" in msg and "re-download" in msg


def test_truncated_gguf_is_a_clear_error(tmp_path: Path, truncated_gguf: Path) -> None:
    with pytest.raises(ModelFileError) as exc:
        start_node(tmp_path, models=[str(truncated_gguf)])
    msg = str(exc.value)
    assert str(truncated_gguf) in msg and "truncated or damaged" in msg and "re-download" in msg


async def test_a_bad_model_next_to_a_good_one_is_refused_and_the_good_one_served(
        tmp_path: Path, truncated_gguf: Path, random_bytes_gguf: Path) -> None:
    node = start_node(tmp_path, models=[str(truncated_gguf), SMOLLM, str(random_bytes_gguf), "no-such-model"])
    try:
        assert list(node.service.slots) == [SMOLLM]
        refused = node.service.refused
        assert len(refused) == 3
        assert "truncated or damaged" in refused[0] and "not a GGUF file" in refused[1]
        assert "unknown model id 'no-such-model'" in refused[2] and "covey models" in refused[2]
        assert await generates(node.address)
    finally:
        node.stop()


async def test_ram_cap_refuses_gemma_naming_both_figures_and_serves_smollm(tmp_path: Path) -> None:
    from covey.models.catalog import Catalog

    smollm_mb, gemma_mb = Catalog().get(SMOLLM).ram_mb, Catalog().get(GEMMA).ram_mb
    cap = smollm_mb + 20
    assert gemma_mb > cap
    node = start_node(tmp_path, models=[SMOLLM, GEMMA], max_model_ram_mb=cap)
    try:
        assert list(node.service.slots) == [SMOLLM]
        (refusal,) = node.service.refused
        assert f"{GEMMA} needs {gemma_mb} MB" in refusal and f"allows {cap} MB" in refusal
        assert f"{smollm_mb} MB of it is taken" in refusal and "raise --max-model-ram-mb" in refusal
        client = GrpcNodeClient(node.address)
        try:
            info = await client.info()
        finally:
            await client.close()
        assert info.model_ram_cap_bytes == cap * 1024 * 1024 and [m.model_id for m in info.models] == [SMOLLM]
        assert await generates(node.address)
    finally:
        node.stop()


def test_node_whose_every_model_is_over_the_cap_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ModelTooLarge) as exc:
        start_node(tmp_path, models=[GEMMA], max_model_ram_mb=128)
    msg = str(exc.value)
    assert GEMMA in msg and "allows 128 MB" in msg and "needs" in msg and "raise --max-model-ram-mb" in msg


async def test_node_server_on_a_taken_port_raises_port_in_use(tmp_path: Path, taken_port: int) -> None:
    node = start_node(tmp_path)  # a loaded service; only its second server fails to bind
    try:
        server = NodeServer(node.service, host="127.0.0.1", port=taken_port)
        with pytest.raises(PortInUse) as exc:
            node.run(server.start)
        assert f"127.0.0.1:{taken_port}" in str(exc.value) and "--port" in str(exc.value)
        assert await generates(node.address)  # the first server is unaffected
    finally:
        node.stop()


# -- the same faults through `covey node join` -------------------------------------------------------


def join(tmp_path: Path, *args: str):
    from covey.cli import app

    return CliRunner().invoke(app, ["node", "join", "--no-announce", "--no-bench", "--data-dir",
                                    str(tmp_path / "cli-data"), *args])


def test_cli_join_on_a_taken_port_exits_with_a_clear_error(tmp_path: Path, taken_port: int) -> None:
    result = join(tmp_path, "--model", SMOLLM, "--port", str(taken_port))
    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"could not listen on 127.0.0.1:{taken_port} (address already in use)" in out  # checked before loading
    assert "pick another port with --port" in out and "Traceback" not in out


def test_cli_join_with_every_model_refused_exits_with_a_clear_error(tmp_path: Path) -> None:
    result = join(tmp_path, "--model", GEMMA, "--max-model-ram-mb", "128", "--port", "0")
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "error:" in out and "allows 128 MB" in out and "Traceback" not in out


def test_cli_join_with_a_corrupt_model_exits_with_a_clear_error(tmp_path: Path, random_bytes_gguf: Path) -> None:
    result = join(tmp_path, "--model", str(random_bytes_gguf), "--port", "0")
    assert result.exit_code == 1, result.output
    assert "not a GGUF file" in " ".join(result.output.split()) and "Traceback" not in result.output


def test_truncated_copy_keeps_the_real_header(truncated_gguf: Path, smollm_path: Path) -> None:
    # The control for the truncation tests: the copy is a GGUF by its magic, only short.
    assert truncated_gguf.read_bytes()[:4] == b"GGUF" and truncated_gguf.stat().st_size < smollm_path.stat().st_size
