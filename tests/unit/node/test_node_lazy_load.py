"""NodeService with `load = "first_use"` (the embedded node): models load on their first request, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from covey.device_node.service import collect
from covey.errors import ModelFileError, ModelTooLarge, UnknownModel
from covey.models.catalog import ModelSpec

from test_node_service import BIG, SMALL, make, req

BROKEN = ModelSpec(id="broken", family="t", params_m=100, quant="Q4", file_mb=100, source="path",
                   path="/m/broken.gguf")


async def test_start_loads_nothing_and_info_offers_every_model_unloaded(tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, BIG, load="first_use")
    await service.start()
    assert catalog.resolved == [] and service.slots == {}
    offers = {m.model_id: m for m in service.info().models}
    assert set(offers) == {"small", "big"} and not any(m.loaded for m in offers.values())
    assert offers["small"].ram_bytes == SMALL.ram_mb * 2**20 and offers["small"].context_length == 2048


async def test_first_request_loads_only_its_model_and_later_ones_reuse_it(tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, BIG, load="first_use")
    await service.start()
    text, _final = await collect(service.generate(req("small")))
    assert text == "Hello!" and catalog.resolved == ["small"]
    await collect(service.generate(req("small")))
    assert catalog.resolved == ["small"]  # loaded once
    offers = {m.model_id: m.loaded for m in service.info().models}
    assert offers == {"small": True, "big": False}


async def test_concurrent_first_requests_load_the_model_once(tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, load="first_use")
    await service.start()
    results = await asyncio.gather(*(collect(service.generate(req("small"))) for _ in range(3)))
    assert [t for t, _ in results] == ["Hello!"] * 3 and catalog.resolved == ["small"]


async def test_a_model_whose_file_fails_on_first_use_is_refused_and_the_node_lives(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, BROKEN, load="first_use")
    await service.start()
    with pytest.raises(ModelFileError):
        await collect(service.generate(req("broken")))
    assert [m.model_id for m in service.info().models] == ["small"]
    assert any("broken" in r for r in service.refused)
    with pytest.raises(UnknownModel, match="it serves: small"):
        await collect(service.generate(req("broken")))
    assert (await collect(service.generate(req("small"))))[0] == "Hello!"


async def test_the_ram_cap_is_still_checked_at_start_up(tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, BIG, load="first_use", max_model_ram_mb=SMALL.ram_mb + 10)
    await service.start()
    assert list(service.pending) == ["small"] and catalog.resolved == []
    assert any("big" in r for r in service.refused)
    service2, _ = make(tmp_path, BIG, load="first_use", max_model_ram_mb=10)
    with pytest.raises(ModelTooLarge):
        await service2.start()


async def test_preload_loads_a_model_in_the_background_once_and_requests_reuse_it(tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, BIG, load="first_use")
    await service.start()
    service.preload("small")
    service.preload("small")  # a second call while the first loads: still one load
    results = await asyncio.gather(*(collect(service.generate(req("small"))) for _ in range(2)))
    assert [t for t, _ in results] == ["Hello!"] * 2 and catalog.resolved == ["small"]
    service.preload("small")  # loaded already: nothing to do
    service.preload("not-served")  # not a first-use model of this node: nothing to do
    assert catalog.resolved == ["small"] and set(service.slots) == {"small"} and list(service.pending) == ["big"]
    await service.close()


async def test_a_failed_preload_is_refused_like_a_first_use_and_close_waits_for_a_load_under_way(
        tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, BROKEN, load="first_use")
    await service.start()
    service.preload("broken")
    service.preload("small")
    await service.close()  # waits for both loads, then frees what loaded
    assert sorted(catalog.resolved) == ["broken", "small"] and service.slots == {}
    assert any("broken" in r for r in service.refused) and "broken" not in service.pending
