"""Real zeroconf inside a throw-away network namespace: nodes announce, a directory process follows."""

from __future__ import annotations

import signal

from conftest import spawn
from netns import Netns

from covey.types import PROTOCOL_VERSION


def test_directory_follows_nodes_joining_changing_and_leaving(netns: Netns) -> None:
    browser = spawn(netns, "browse.py", "--interval", "0.3", "--failures", "2")
    browser.expect(lambda e: e["kind"] == "ready", what="browser ready")
    nodes = {nid: spawn(netns, "fake_node.py", nid, f"box-{nid}") for nid in ("aaaa1111", "bbbb2222", "cccc3333")}
    old = spawn(netns, "fake_node.py", "dddd4444", "old-box", "--protocol", str(PROTOCOL_VERSION + 1))

    for node in nodes.values():
        node.expect(lambda e: e["event"] == "announced", what="announcement")

    def added(seen: list[dict]) -> set[str]:
        return {e["node_id"] for e in seen if e["kind"] == "added"}

    browser.until(lambda seen: added(seen) == set(nodes), what="all three nodes added")
    browser.until(lambda seen: any(e["kind"] == "refused" for e in seen), what="old node refused")
    refused = next(e for e in browser.seen if e["kind"] == "refused")
    assert f"protocol {PROTOCOL_VERSION + 1}" in refused["reason"] and "old-box" in refused["reason"]
    assert all(e["node_id"] != "dddd4444" for e in browser.seen if e["kind"] in ("added", "updated"))

    nodes["aaaa1111"].send("battery 30")
    updated = browser.expect(
        lambda e: e["kind"] == "updated" and e["node_id"] == "aaaa1111" and e["battery"] == 30.0,
        what="battery update",
    )
    assert updated["models"] == ["smollm2-135m-instruct-q4_1"]

    nodes["bbbb2222"].proc.send_signal(signal.SIGTERM)
    gone = browser.expect(lambda e: e["kind"] == "removed" and e["node_id"] == "bbbb2222", what="goodbye removal")
    assert gone["reason"] == "said goodbye"
    nodes["bbbb2222"].expect(lambda e: e["event"] == "closed", what="node closed")
    assert nodes["bbbb2222"].proc.wait(timeout=10) == 0

    nodes["cccc3333"].proc.kill()
    dropped = browser.expect(lambda e: e["kind"] == "removed" and e["node_id"] == "cccc3333", what="health removal")
    assert dropped["reason"] == "failed 2 health checks in a row"

    removed = {e["node_id"] for e in browser.seen if e["kind"] == "removed"}
    assert removed == {"bbbb2222", "cccc3333"}
    old.proc.terminate()


def test_dig_sees_the_announced_node(netns: Netns) -> None:
    node = spawn(netns, "fake_node.py", "e1e2e3e4e5", "dig-box", "--battery", "55")
    announced = node.expect(lambda e: e["event"] == "announced", what="announcement")
    instance = announced["name"]
    assert instance == "dig-box-e1e2e3e4._covey._tcp.local."

    ptr = netns.run(["dig", "-p", "5353", "@127.0.0.1", "_covey._tcp.local", "PTR", "+time=3", "+tries=2"])
    assert ptr.returncode == 0, ptr.stderr
    assert f"PTR\t{instance}" in ptr.stdout, ptr.stdout

    txt = netns.run(["dig", "-p", "5353", "@127.0.0.1", instance.rstrip("."), "TXT", "+short", "+time=3", "+tries=2"])
    assert txt.returncode == 0, txt.stderr
    for record in (f'"pv={PROTOCOL_VERSION}"', '"id=e1e2e3e4e5"', '"name=dig-box"', '"models=smollm2-135m-instruct-q4_1"', '"bat=on:55"'):
        assert record in txt.stdout, txt.stdout

    srv = netns.run(["dig", "-p", "5353", "@127.0.0.1", instance.rstrip("."), "SRV", "+short", "+time=3", "+tries=2"])
    assert f"0 0 {announced['port']} dig-box-e1e2e3e4.local." in srv.stdout, srv.stdout
