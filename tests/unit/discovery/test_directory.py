"""NodeDirectory, HealthChecker and the nodes table, driven by recording fakes (no network)."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from covey.errors import IncompatibleProtocol, NodeUnavailable
from covey.discovery.directory import GOODBYE, DirectoryEvent, NodeDirectory, RefusedNode
from covey.discovery.health import HealthChecker
from covey.cli_output import render_nodes_table
from covey.types import Battery, ModelId, ModelOffer, NodeId, NodeInfo


def node(node_id: str, name: str = "", address: str = "", **kw: object) -> NodeInfo:
    return NodeInfo(
        node_id=NodeId(node_id), name=name or f"box-{node_id}", address=address or f"10.0.0.{len(node_id)}:50551",
        source=kw.pop("source", "zeroconf"), **kw,  # type: ignore[arg-type]
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[DirectoryEvent] = []

    def __call__(self, event: DirectoryEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[tuple[str, str | None]]:
        return [(e.kind, e.node.node_id if e.node else None) for e in self.events]


class ScriptedCheck:
    """Health check answering from a script per node id (default healthy); records what it saw."""

    def __init__(self, script: dict[str, list[bool | Exception]] | None = None) -> None:
        self.script = script or {}
        self.seen: list[str] = []

    async def __call__(self, info: NodeInfo) -> bool:
        self.seen.append(info.node_id)
        answers = self.script.get(info.node_id)
        answer = answers.pop(0) if answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer


class ScriptedProbe:
    """Static-peer probe answering per address with a NodeInfo or raising; records addresses asked."""

    def __init__(self, answers: dict[str, list[NodeInfo | Exception]]) -> None:
        self.answers = answers
        self.seen: list[str] = []

    async def __call__(self, address: str) -> NodeInfo:
        self.seen.append(address)
        answer = self.answers[address].pop(0) if len(self.answers[address]) > 1 else self.answers[address][0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class CountingSleep:
    """Records sleeps; cancels the loop after ``rounds`` of them."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) >= self.rounds:
            raise asyncio.CancelledError


# --- NodeDirectory -------------------------------------------------------------------------------


def test_upsert_adds_then_replaces_whole_snapshot_and_ignores_no_change() -> None:
    d = NodeDirectory()
    seen = Recorder()
    d.subscribe(seen)
    first = node("a", battery=Battery(present=True, percent=80))
    second = first.model_copy(update={"battery": Battery(present=True, percent=30)})

    assert d.upsert(first) is not None
    assert d.upsert(first) is None
    assert d.upsert(second) is not None

    assert seen.kinds == [("added", "a"), ("updated", "a")]
    assert d.get("a") is second
    assert d.nodes() == (second,)


def test_remove_reports_the_last_snapshot_and_reason() -> None:
    d = NodeDirectory()
    seen = Recorder()
    d.subscribe(seen)
    d.upsert(node("a"))
    event = d.remove("a", "said goodbye")
    assert event is not None and event.node is not None and event.node.node_id == "a"
    assert event.reason == "said goodbye"
    assert d.remove("a", "again") is None
    assert d.nodes() == ()
    assert seen.kinds == [("added", "a"), ("removed", "a")]


def test_nodes_are_listed_by_name_and_found_by_address() -> None:
    d = NodeDirectory()
    d.upsert(node("z", name="zeta", address="h:2"))
    d.upsert(node("a", name="alpha", address="h:1"))
    assert [n.name for n in d.nodes()] == ["alpha", "zeta"]
    assert d.at_address("h:2") is not None and d.at_address("h:2").node_id == "z"  # type: ignore[union-attr]
    assert d.at_address("h:3") is None


def test_refused_nodes_are_visible_and_not_listed() -> None:
    d = NodeDirectory()
    seen = Recorder()
    d.subscribe(seen)
    d.refuse("old._covey._tcp.local.", "h:1", "speaks protocol 2")
    d.refuse("old._covey._tcp.local.", "h:1", "speaks protocol 2")
    assert d.refused() == (RefusedNode(key="old._covey._tcp.local.", address="h:1", reason="speaks protocol 2"),)
    assert d.nodes() == ()
    assert [e.kind for e in seen.events] == ["refused"]
    d.forget_refused("old._covey._tcp.local.")
    assert d.refused() == ()


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    d = NodeDirectory()
    seen = Recorder()

    def broken(event: DirectoryEvent) -> None:
        raise RuntimeError("boom")

    d.subscribe(broken)
    d.subscribe(seen)
    d.upsert(node("a"))
    assert seen.kinds == [("added", "a")]


def test_unsubscribe_stops_events() -> None:
    d = NodeDirectory()
    seen = Recorder()
    unsubscribe = d.subscribe(seen)
    unsubscribe()
    unsubscribe()
    d.upsert(node("a"))
    assert seen.events == []


async def test_wait_for_wakes_on_change_and_reports_timeout() -> None:
    d = NodeDirectory()
    waiting = asyncio.create_task(d.wait_for(lambda dd: len(dd.nodes()) == 2, timeout_s=30))
    await asyncio.sleep(0)
    d.upsert(node("a"))
    d.upsert(node("b"))
    assert await waiting is True
    assert await d.wait_for(lambda dd: len(dd.nodes()) == 5, timeout_s=0) is False


# --- HealthChecker -------------------------------------------------------------------------------


async def test_node_is_dropped_after_n_consecutive_failures_only() -> None:
    d = NodeDirectory()
    seen = Recorder()
    d.subscribe(seen)
    d.upsert(node("a"))
    d.upsert(node("b"))
    check = ScriptedCheck({"a": [False, True, False, False], "b": [False, OSError("refused"), False, False]})
    health = HealthChecker(d, check, failures=3, interval_s=5.0)

    await health.tick()  # a: 1 miss, b: 1
    await health.tick()  # a: recovered, b: 2 (an exception counts as a failure)
    assert health.missed("a") == 0 and health.missed("b") == 2
    await health.tick()  # a: 1, b: 3 -> dropped
    await health.tick()  # a: 2; b is lost, checked once more and still failing

    assert d.get("b") is None
    assert d.get("a") is not None and health.missed("a") == 2
    assert seen.events[-1].kind == "removed" and seen.events[-1].reason == "failed 3 health checks in a row"
    assert check.seen == ["a", "b", "a", "b", "a", "b", "b", "a"]


async def test_embedded_node_is_not_health_checked() -> None:
    d = NodeDirectory()
    d.upsert(node("local", source="embedded"))
    check = ScriptedCheck({"local": [False, False]})
    await HealthChecker(d, check, failures=1, interval_s=1).tick()
    assert check.seen == [] and d.get("local") is not None


async def test_static_peer_is_probed_until_it_answers_then_checked() -> None:
    d = NodeDirectory()
    seen = Recorder()
    d.subscribe(seen)
    answer = node("s1", address="0.0.0.0:50551", source="zeroconf", models=(ModelOffer(model_id=ModelId("m")),))
    probe = ScriptedProbe({"vpn-host:50551": [NodeUnavailable("down"), answer]})
    check = ScriptedCheck()
    health = HealthChecker(d, check, failures=2, interval_s=1, probe=probe, static_peers=["vpn-host:50551"])

    await health.tick()
    assert d.nodes() == ()
    await health.tick()
    await health.tick()

    assert probe.seen == ["vpn-host:50551", "vpn-host:50551"]  # not probed again once present
    added = d.get("s1")
    assert added is not None and added.address == "vpn-host:50551" and added.source == "static"
    assert check.seen == ["s1", "s1"]
    assert seen.kinds == [("added", "s1")]


async def test_static_peer_dropped_by_health_checks_comes_back_when_it_answers_again() -> None:
    d = NodeDirectory()
    probe = ScriptedProbe({"h:1": [node("s1")]})
    check = ScriptedCheck({"s1": [True, False]})
    health = HealthChecker(d, check, failures=1, interval_s=1, probe=probe, static_peers=["h:1"])
    await health.tick()
    await health.tick()  # check fails -> dropped
    assert d.get("s1") is None
    await health.tick()  # probed again
    assert d.get("s1") is not None


async def test_static_peer_speaking_another_protocol_is_refused_visibly() -> None:
    d = NodeDirectory()
    probe = ScriptedProbe({"h:1": [IncompatibleProtocol("node at h:1 speaks covey protocol 2, this side speaks protocol 1")]})
    await HealthChecker(d, ScriptedCheck(), failures=1, interval_s=1, probe=probe, static_peers=["h:1"]).tick()
    assert d.nodes() == ()
    (refused,) = d.refused()
    assert refused.address == "h:1" and "protocol 2" in refused.reason


async def test_run_sleeps_the_interval_between_rounds() -> None:
    d = NodeDirectory()
    d.upsert(node("a"))
    check = ScriptedCheck()
    sleep = CountingSleep(rounds=3)
    with pytest.raises(asyncio.CancelledError):
        await HealthChecker(d, check, failures=2, interval_s=2.5, sleep=sleep).run()
    assert sleep.slept == [2.5, 2.5, 2.5]
    assert check.seen == ["a", "a", "a"]


async def test_a_check_timed_out_by_a_busy_event_loop_is_no_verdict_but_a_silent_node_fails() -> None:
    """A burst of work in this process (1,000 answers being placed) must not drop nodes that answered."""
    import time

    d = NodeDirectory()
    d.upsert(node("a"))
    d.upsert(node("b"))
    block = [True]

    async def check(n: NodeInfo) -> bool:
        if n.node_id == "b":
            await asyncio.Event().wait()  # b never answers
        if block[0]:  # a answers at once, but the loop is blocked for 0.5 s before anyone can see it
            block[0] = False
            asyncio.get_running_loop().call_soon(time.sleep, 0.5)
            await asyncio.sleep(0)
        return True

    health = HealthChecker(d, check, failures=1, interval_s=1, timeout_s=0.05)
    await health.tick()
    assert d.get("a") is not None and d.get("b") is not None  # judged by a blocked loop: no verdict
    assert health.missed("a") == 0 and health.missed("b") == 0
    await health.tick()  # a free loop: b had its time and said nothing
    assert d.get("a") is not None and d.get("b") is None


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="failures"):
        HealthChecker(NodeDirectory(), ScriptedCheck(), failures=0, interval_s=1)
    with pytest.raises(ValueError, match="probe"):
        HealthChecker(NodeDirectory(), ScriptedCheck(), failures=1, interval_s=1, static_peers=["h:1"])


# --- table ---------------------------------------------------------------------------------------


def test_nodes_table_shows_each_node_and_refused_ones() -> None:
    nodes = [
        node("3f2a9c0e11", name="den-pc", address="10.0.0.2:50551", cpu_cores=8, tokens_per_second=148.2,
             models=(ModelOffer(model_id=ModelId("smollm2"), loaded=True),), ram_total_bytes=16 << 30,
             ram_free_bytes=8 << 30, battery=Battery(present=True, on_battery=True, percent=45)),
    ]
    refused = [RefusedNode(key="old-1234._covey._tcp.local.", address="10.0.0.9:50551", reason="speaks protocol 2")]
    console = Console(width=250, record=True)
    console.print(render_nodes_table(nodes, refused))
    out = console.export_text()
    for text in ("den-pc", "3f2a9c0e", "10.0.0.2:50551", "smollm2*", "8.0/16", "148", "45% bat",
                 "zeroconf", "refused", "speaks protocol 2", "old-1234"):
        assert text in out, out


def test_empty_table_says_how_to_add_a_node() -> None:
    console = Console(width=200, record=True)
    console.print(render_nodes_table([]))
    assert "covey node join" in console.export_text()


async def test_discovered_node_dropped_by_checks_comes_back_when_it_answers_again() -> None:
    d = NodeDirectory()
    seen = Recorder()
    d.subscribe(seen)
    d.upsert(node("z"))
    check = ScriptedCheck({"z": [False, False, True]})
    health = HealthChecker(d, check, failures=1, interval_s=1)
    await health.tick()  # fails -> dropped
    await health.tick()  # lost, still failing
    assert d.get("z") is None
    await health.tick()  # answers again -> back
    assert d.get("z") is not None
    assert seen.kinds == [("added", "z"), ("removed", "z"), ("added", "z")]


async def test_lost_node_is_given_up_after_revive_rounds() -> None:
    d = NodeDirectory()
    d.upsert(node("z"))
    check = ScriptedCheck({"z": [False] * 3 + [True]})
    health = HealthChecker(d, check, failures=1, interval_s=1, revive_rounds=2)
    for _ in range(4):
        await health.tick()
    assert d.get("z") is None
    assert check.seen == ["z", "z", "z"]  # dropped, then two revive attempts, then given up


async def test_node_that_said_goodbye_is_not_revived() -> None:
    d = NodeDirectory()
    d.upsert(node("z"))
    check = ScriptedCheck()
    health = HealthChecker(d, check, failures=1, interval_s=1)
    d.remove("z", GOODBYE)
    await health.tick()
    assert d.get("z") is None and check.seen == []


async def test_a_check_that_hangs_counts_as_failed() -> None:
    d = NodeDirectory()
    d.upsert(node("slow"))
    hung: list[str] = []

    async def never_answers(info: NodeInfo) -> bool:
        hung.append(info.node_id)
        await asyncio.Event().wait()
        return True

    await HealthChecker(d, never_answers, failures=1, interval_s=1, timeout_s=0.01, revive_rounds=1).tick()
    assert hung == ["slow"] and d.get("slow") is None
