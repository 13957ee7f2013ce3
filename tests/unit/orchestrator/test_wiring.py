"""wiring.build and the ledger hook: settings in, an Orchestrator out, one ledger row per answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.energy.ledger import Ledger
from covey.models.catalog import Catalog
from covey.orchestrator.recorder import LedgerRecorder, to_record
from covey.orchestrator.results import AnswerResult, Attempt
from covey.wiring import build
from covey.settings import Settings
from covey.types import Energy, EnergyComponent, EnergyMethod

from fakes import FakeNodeClient, ScriptedRouter, node_info

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


def _energy(j: float, method: EnergyMethod = EnergyMethod.ESTIMATED) -> Energy:
    return Energy.of([EnergyComponent(name="cpu", joules=j, method=method, uncertainty=0.3)])


def _result() -> AnswerResult:
    attempts = (
        Attempt(node_id="a", node_name="pi", address="pi:1", model_id=SMOL, outcome="escalated",
                prompt_tokens=12, completion_tokens=30, seconds=1.5, energy=_energy(2.0)),
        Attempt(node_id="b", node_name="den", address="den:1", model_id=GEMMA, outcome="failed_over",
                prompt_tokens=12, completion_tokens=5, energy=_energy(0.5)),
        Attempt(node_id="c", node_name="den-2", address="den-2:1", model_id=GEMMA, outcome="answered",
                prompt_tokens=12, completion_tokens=40, seconds=2.0, energy=_energy(3.0)),
    )
    return AnswerResult(session_id="s1", text="42", route="math", route_confidence=0.9, agent="mathematician",
                        node="den-2", model=GEMMA, attempts=attempts, energy=_energy(5.6), overhead=_energy(0.1))


def test_to_record_keeps_every_attempt_with_its_outcome_quantization_and_energy(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, energy={"carbon_g_per_kwh": 300.0, "pue": 1.2})
    rec = to_record(_result(), settings, Catalog())
    assert (rec.session, rec.route, rec.agent) == ("s1", "math", "mathematician")
    assert [(a.node, a.model, a.outcome) for a in rec.attempts] == [
        ("pi", SMOL, "escalated"), ("den", GEMMA, "failed_over"), ("den-2", GEMMA, "answered")]
    smol_q, gemma_q = Catalog().get(SMOL).quant, Catalog().get(GEMMA).quant
    assert [a.quantization for a in rec.attempts] == [smol_q, gemma_q, gemma_q] and smol_q and gemma_q
    assert rec.energy.joules == pytest.approx(2.0 + 0.5 + 3.0 + 0.1)
    assert rec.pue == 1.2 and rec.carbon.g_per_kwh == 300.0
    assert rec.joules == pytest.approx(5.6 * 1.2)


async def test_the_recorder_writes_one_row_per_answer(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path)
    recorder = LedgerRecorder(settings)
    await recorder(_result())
    await recorder(_result())
    ledger = Ledger(tmp_path / "ledger.db")
    assert ledger.count() == 2
    assert len(ledger.query("SELECT * FROM attempts")) == 6
    ledger.close()


async def test_build_names_the_real_parts_and_an_answer_lands_in_the_ledger(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, orchestrator={"discover": False, "embedded": "never"})
    client = FakeNodeClient(node_info("den", {SMOL: 50, GEMMA: 30}), joules=1.5)
    orch = await build(settings, extra_clients=[client], router=ScriptedRouter("chat"))
    try:
        result = await orch.ask("Tell me something nice")
    finally:
        await orch.close()
    assert result.node == "den" and result.text == "Hello world"
    assert [m.role for m in client.seen[0].messages][0] == "system"  # the shipped companion's prompt
    ledger = Ledger(tmp_path / "ledger.db")
    rows = ledger.query("SELECT route, agent, device_joules FROM answers")
    ledger.close()
    assert len(rows) == 1 and rows[0]["route"] == "chat" and rows[0]["device_joules"] >= 1.5
