"""llama.cpp's native log lines go to Python logging at DEBUG, never straight to the terminal: here for
the embedded in-process node that `covey ask` runs (the CLI test covers `covey node join`)."""

from __future__ import annotations

import logging
from pathlib import Path

from covey.device_node.service import collect
from covey.wiring import embedded_client
from covey.settings import Settings
from covey.types import GenerateRequest, ModelId, RequestId, Sampling

from .conftest import SMOLLM

NATIVE = ("load_tensors:", "llama_context:", "llama_model_loader:", "print_info:", "llama_kv_cache")


async def test_embedded_node_logs_llama_cpp_lines_at_debug_and_prints_none(tmp_path: Path, capfd, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="covey.llama_cpp")
    settings = Settings.load(data_dir=tmp_path / "data", node={"n_threads": 1, "self_benchmark": False, "n_ctx": 256},
                             orchestrator={"embedded_model": SMOLLM})
    client = await embedded_client(settings)
    try:
        req = GenerateRequest(request_id=RequestId("r"), model_id=ModelId(SMOLLM), prompt="The sky is",
                              max_tokens=3, sampling=Sampling(temperature=0.0))
        _, final = await collect(client.generate(req))
        assert final.completion_tokens > 0
    finally:
        await client.close()
    out, err = capfd.readouterr()
    for marker in NATIVE:
        assert marker not in out and marker not in err, f"{marker} reached the terminal:\n{out}\n{err}"
    native = [r for r in caplog.records if r.name == "covey.llama_cpp"]
    assert native and all(r.levelno == logging.DEBUG for r in native)
    assert any(r.getMessage().startswith("llama_context:") for r in native)
    assert any(r.getMessage().startswith("load_tensors:") for r in native)  # the model load too, not hidden
