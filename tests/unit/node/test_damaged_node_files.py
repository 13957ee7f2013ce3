"""A node whose identity.json or benchmarks.json is damaged starts anyway, says so, and repairs the file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from covey.device_node.host import claim_identity, load_identity
from covey.device_node.service import BENCH_RUNS

from test_node_service import SMALL, make

DAMAGED_IDENTITIES = [b"", b"{", b'["node_id"]', b'"abc"', b'{"node_id": 5}', b'{"node_id": {"a": 1}}',
                      b'{"node_id": "../../etc"}', b'{"other": "x"}', b"\xff\xfe{}", b'{"node_id": ""}']


@pytest.mark.parametrize("content", DAMAGED_IDENTITIES)
def test_a_damaged_identity_is_moved_aside_and_replaced_with_a_warning(tmp_path: Path, content: bytes,
                                                                         caplog) -> None:
    path = tmp_path / "node" / "identity.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="covey.device_node.host"):
        claim = claim_identity(tmp_path, "den-pc")
    try:
        node_id = claim.identity.node_id
        assert len(node_id) == 16 and all(c in "0123456789abcdef" for c in node_id)
        assert json.loads(path.read_text()) == {"node_id": node_id}
        assert (path.parent / "identity.json.damaged").read_bytes() == content
        assert any("identity.json is damaged" in r.getMessage() and "identity.json.damaged" in r.getMessage()
                   for r in caplog.records)
    finally:
        claim.release()
    assert load_identity(tmp_path).node_id == node_id  # kept from now on


def test_a_good_identity_is_kept_without_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "node" / "identity.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"node_id": "0123456789abcdef"}')
    with caplog.at_level(logging.WARNING):
        assert load_identity(tmp_path).node_id == "0123456789abcdef"
    assert caplog.records == []


@pytest.mark.parametrize("content", ["", "{", '"abc"', "[1, 2]", '{"k": "fast"}', '{"k": NaN}', "null"])
async def test_a_damaged_speed_cache_is_measured_again_and_rewritten(tmp_path: Path, content: str) -> None:
    model = tmp_path / "small.gguf"
    model.write_bytes(b"GGUF" + bytes(2048))
    spec = SMALL.model_copy(update={"path": str(model)})
    cache = tmp_path / "node" / "benchmarks.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(content)
    service, _ = make(tmp_path, spec)
    service.settings = service.settings.model_copy(update={"self_benchmark": True})
    await service.start()
    try:
        assert len(service.slots["small"].backend.seen) == 1 + BENCH_RUNS
        assert service.slots["small"].tokens_per_second > 0
    finally:
        await service.close()
    saved = json.loads(cache.read_text())
    assert isinstance(saved, dict) and all(isinstance(v, float) for v in saved.values()) and saved
