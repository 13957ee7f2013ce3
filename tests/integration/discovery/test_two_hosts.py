"""Two namespaces joined by a veth pair, like two machines on one LAN: discovery crosses the link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import spawn
from netns import Netns, veth_pair


@pytest.fixture
def second_host() -> Iterator[Netns]:
    with Netns() as ns:
        yield ns


def test_node_on_one_host_is_found_from_the_other_by_interface_name(netns: Netns, second_host: Netns) -> None:
    node_ip, browser_ip = veth_pair(netns, second_host)
    interface = next(line.split(":")[1].strip().split("@")[0] for line in
                     second_host.run(["ip", "-o", "link", "show", "type", "veth"]).stdout.splitlines())
    browser = spawn(second_host, "browse.py", "--interface", interface)
    browser.expect(lambda e: e["kind"] == "ready", what="browser ready")
    node = spawn(netns, "fake_node.py", "f00dcafe", "far-box", "--interface", node_ip)
    announced = node.expect(lambda e: e["event"] == "announced", what="announcement")

    found = browser.expect(lambda e: e["kind"] == "added", what="node across the link")

    assert found["node_id"] == "f00dcafe"
    assert found["address"] == f"{node_ip}:{announced['port']}"  # reachable from the browser's host
    assert browser_ip != node_ip
