"""The chat's per-answer line, its 'why', and the session's energy against the published cloud figures."""

from __future__ import annotations

from chat_fakes import result

from covey.energy.carbon import CarbonIntensity
from covey.energy.report import CLOUD_FIGURES
from covey.orchestrator.results import Attempt, Notice
from covey.tui.commands import CommandError, closest, parse
from covey.tui.summary import SessionEnergy, answer_line, why_line

GRID = CarbonIntensity(g_per_kwh=360.0, source="test")


def test_the_line_scales_joules_and_carbon_by_the_pue() -> None:
    line = answer_line(result("hi", "s"), GRID, pue=1.5)
    # 3.6 J x 1.5 = 5.4 J, range +/-50 %; 5.4 J = 1.5e-6 kWh x 360 g/kWh = 0.00054 g
    assert line.endswith("5.40 J (2.70-8.10, estimated) · 0.00054 gCO2e")


def test_why_reads_failover_and_escalation_from_the_attempts_when_no_notice_said_so() -> None:
    r = result("ok", "s", escalated=True)
    gone = Attempt(node_id="id-x", node_name="x", address="x:1", model_id="m", outcome="failed_over")
    r = r.model_copy(update={"attempts": (gone, *r.attempts), "route_note": "unsure between chat and code"})
    assert why_line(r, []) == ("escalated (3 attempts); failed over to another node; "
                               "routing: unsure between chat and code")
    said = [Notice(kind="failover", text="'x' went away; continuing on 'den'")]
    assert why_line(r, said).startswith("failed over: 'x' went away; continuing on 'den'; escalated (3 attempts)")
    assert why_line(result("ok", "s"), [Notice(kind="grounding", text="nothing relevant found")]) == ""


def test_the_session_total_is_compared_with_the_first_current_cloud_figure() -> None:
    total = SessionEnergy(GRID)
    assert total.line() == "no answers yet"
    total.add(result("a", "s"))
    total.add(result("b", "s"))
    head = next(f for f in CLOUD_FIGURES if f.current)
    per = head.joules / 3.6
    assert total.line() == (f"2 answers, 7.2 J, {GRID.grams(7.2):.2g} gCO2e · one cloud prompt "
                            f"({head.wh_per_query:g} Wh, {head.label.split(',')[0]}) ≈ {per:.0f} answers like these")
    report = total.report()
    assert all(f.label in report for f in CLOUD_FIGURES) and "7.2 J (3.6-10.8, estimated)" in report


def test_commands_parse_and_name_the_closest() -> None:
    inv = parse("/rag search the boiler")
    assert (inv.command.name, inv.arg) == ("rag", "search the boiler")
    assert closest("ses", ["sessions", "new"]) == "sessions" and closest("zzz", ["why"]) is None
    for bad, said in (("/", "type a command after '/'"), ("/hepl", "did you mean /help?"),
                      ("/route", "/route needs an argument")):
        try:
            parse(bad)
        except CommandError as exc:
            assert said in str(exc)
        else:
            raise AssertionError(f"{bad!r} parsed")
