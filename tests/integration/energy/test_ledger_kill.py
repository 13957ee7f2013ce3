"""The ledger on a real SQLite file survives a kill -9 in the middle of writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from covey.energy.ledger import Ledger

WRITER = r"""
import sys
from covey.energy.carbon import CarbonIntensity
from covey.energy.ledger import AnswerRecord, AttemptRecord, Ledger
from covey.types import Energy, EnergyComponent, EnergyMethod

ledger = Ledger(sys.argv[1])
c = CarbonIntensity(g_per_kwh=100.0, source="test")
e = Energy.of([EnergyComponent(name="cpu", joules=2.0, marginal_joules=1.0, method=EnergyMethod.ESTIMATED)])
n = 0
while True:
    ledger.record(AnswerRecord(agent="chat", carbon=c, attempts=(
        AttemptRecord(node="n", model="m", tokens_out=5, energy=e),) * 3, overhead=e))
    n += 1
    print(n, flush=True)
"""


def test_rows_committed_before_kill_9_are_all_there(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 200:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    ledger = Ledger(path)
    assert ledger.query("PRAGMA integrity_check")[0][0] == "ok"
    n = ledger.count()
    assert n >= committed
    # every answer is whole: 3 attempts and 4 components each, never a torn row
    assert len(ledger.query("SELECT * FROM attempts")) == 3 * n
    assert len(ledger.query("SELECT * FROM components")) == 4 * n
    ledger.record(ledger_row())
    assert ledger.count() == n + 1


def ledger_row():
    from covey.energy.carbon import CarbonIntensity
    from covey.energy.ledger import AnswerRecord

    return AnswerRecord(agent="after", carbon=CarbonIntensity(g_per_kwh=1.0, source="t"))
