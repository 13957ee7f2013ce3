"""`run_node` secures its port before loading models, and the metrics endpoint stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from covey.device_node.runner import run_node
from covey.errors import NotPaired
from covey.settings import Settings

SMOLLM = "smollm2-135m-instruct-q4_1"


async def test_an_unpaired_node_refuses_to_serve_the_lan_before_loading_anything(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, node={"host": "0.0.0.0", "port": 0, "announce": False,
                                                      "models": ["no-such-model"]})
    with pytest.raises(NotPaired, match="refusing to serve 0.0.0.0 in plaintext"):
        await run_node(settings)  # fails on pairing, not on the unknown model: nothing was loaded or bound


async def test_metrics_bind_127_0_0_1_whatever_the_grpc_host(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, node={"host": "127.0.0.2", "port": 0, "announce": False,
                                                      "models": [SMOLLM], "self_benchmark": False, "n_threads": 1,
                                                      "n_ctx": 256}, energy={"metrics_port": 0})
    stop = asyncio.Event()
    seen: dict[str, str | None] = {}

    def ready(service, address: str, metrics_url: str | None) -> None:
        seen.update(address=address, metrics=metrics_url)
        stop.set()

    await asyncio.wait_for(run_node(settings, on_ready=ready, stop=stop), 60)
    assert str(seen["address"]).startswith("127.0.0.2:")
    assert str(seen["metrics"]).startswith("http://127.0.0.1:")
