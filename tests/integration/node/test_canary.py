"""The llama.cpp canary for real: child processes that load SmolLM2 and really die by SIGSEGV.

COVEY_TEST_CANARY_CRASH (read by the child only) makes a child with the extra weight buffers on crash
before its first decode, as llama.cpp's AMX buffers do on Sapphire Rapids. The CPU facts are injected
(a CPU without AMX, where `auto` tries the extra buffers first), so the test means the same on an AMD
EPYC and on an Intel Xeon with AMX.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from covey.device_node.backend import LlamaBackend
from covey.device_node.canary import CRASH_ENV, LlamaCanary, run_child
from covey.device_node.cpu import CpuFacts
from covey.device_node.host import NodeIdentity
from covey.device_node.runner import build_node
from covey.device_node.service import NodeService, collect
from covey.energy.meter import CpuTimeEstimator
from covey.errors import NativeCrash
from covey.models.catalog import Catalog
from covey.settings import NodeSettings, Settings
from covey.types import GenerateRequest, ModelId, RequestId, Sampling

from .conftest import SMOLLM

NO_AMX = CpuFacts("AMD EPYC 7B13", frozenset({"avx2", "fma"}))


def test_a_child_killed_by_sigsegv_is_reported_as_a_native_crash(smollm_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(CRASH_ENV, "extra-bufts")
    crashed = run_child(smollm_path, True, 1)
    assert crashed.native_crash and crashed.outcome == "crashed (SIGSEGV)" and not crashed.ok
    fine = run_child(smollm_path, False, 1)
    assert fine.ok and fine.outcome == "ok"


def test_load_error_in_the_child_is_not_a_crash(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(4096))
    attempt = run_child(junk, True, 1)
    assert not attempt.ok and not attempt.native_crash and attempt.outcome.startswith("exit 3: llama.cpp could not load")


def node(data_dir: Path, canary: LlamaCanary) -> NodeService:
    settings = NodeSettings(models=[SMOLLM], self_benchmark=False, n_threads=1, n_ctx=256, announce=False)
    return NodeService(settings, identity=NodeIdentity("canary-node", "canary"),
                       catalog=Catalog(models_dir=data_dir / "models"), data_dir=data_dir, canary=canary,
                       backend_factory=LlamaBackend, meter=CpuTimeEstimator())


async def test_crash_retries_with_safe_options_records_and_uses_them_and_next_start_skips_it(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(CRASH_ENV, "extra-bufts")
    data = tmp_path / "data"
    first = LlamaCanary(data, "auto", cpu=NO_AMX)
    service = node(data, first)
    await service.start()  # this process survives the child's SIGSEGV
    try:
        slot = service.slots[SMOLLM]
        assert first.children == 2 and slot.buffers is not None and slot.buffers.fell_back
        assert slot.backend.use_extra_bufts is False and slot.backend.llm.model_params.use_extra_bufts is False
        assert any("extra weight buffers off" in n and "crashed (SIGSEGV)" in n for n in service.ready_notes())
        req = GenerateRequest(request_id=RequestId("r"), model_id=ModelId(SMOLLM), prompt="The sky is",
                              max_tokens=4, sampling=Sampling(temperature=0.0))
        _, final = await collect(service.generate(req))
        assert final.completion_tokens > 0
    finally:
        await service.close()
    (entry,) = json.loads((data / "cache" / "llama_canary.json").read_text()).values()
    assert entry["attempts"] == {"extra_bufts_on": "crashed (SIGSEGV)", "extra_bufts_off": "ok"}
    assert entry["chosen"]["use_extra_bufts"] is False and entry["llama_cpp"].startswith("0.3.")

    monkeypatch.delenv(CRASH_ENV)  # would now pass with extra buffers: the cached verdict must still rule
    second = LlamaCanary(data, "auto", cpu=NO_AMX)
    again = node(data, second)
    await again.start()
    try:
        assert second.children == 0
        assert again.slots[SMOLLM].buffers.cached and again.slots[SMOLLM].backend.use_extra_bufts is False
    finally:
        await again.close()


async def test_without_a_crash_the_extra_buffers_stay_on(tmp_path: Path) -> None:
    canary = LlamaCanary(tmp_path / "data", "auto", cpu=NO_AMX)
    service = node(tmp_path / "data", canary)
    await service.start()
    try:
        assert canary.children == 1 and service.slots[SMOLLM].backend.llm.model_params.use_extra_bufts is True
        assert service.ready_notes() == []  # nothing worth a line at start-up
    finally:
        await service.close()


async def test_a_model_that_crashes_every_way_is_refused_and_the_node_lives(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(CRASH_ENV, "always")
    settings = Settings.load(data_dir=tmp_path / "data", node={
        "models": [SMOLLM], "self_benchmark": False, "n_threads": 1, "announce": False, "port": 0})
    service = build_node(settings, measure=False)  # the real wiring: this machine's CPU facts
    with pytest.raises(NativeCrash) as exc:
        await service.start()
    msg = str(exc.value)
    assert "llama.cpp crashed in a child process" in msg and "crashed (SIGSEGV)" in msg
    assert "--weight-buffers off" in msg or "another llama-cpp-python build" in msg
