"""ZeroconfAnnouncer against a recording stand-in for AsyncZeroconf (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from zeroconf import NonUniqueNameException

from covey.discovery.announcer import ZeroconfAnnouncer, host_label, instance_label
from covey.discovery.txt import SERVICE_TYPE
from covey.errors import DuplicateNode
from covey.types import Battery, NodeId, NodeInfo


async def _done() -> None:
    return None


class RecordingZeroconf:
    """Records what the announcer asked of zeroconf: (call, service name, TXT properties)."""

    def __init__(self, refuse_name: bool = False) -> None:
        self.calls: list[tuple[str, str, dict[bytes, bytes | None]]] = []
        self.closed = False
        self.refuse_name = refuse_name
        self.allow_name_change: list[bool] = []

    async def async_register_service(self, info: Any, allow_name_change: bool = False) -> Any:
        self.allow_name_change.append(allow_name_change)
        if self.refuse_name:
            raise NonUniqueNameException
        self.calls.append(("register", info.name, dict(info.properties)))
        self.registered = info
        return _done()

    async def async_update_service(self, info: Any) -> Any:
        self.calls.append(("update", info.name, dict(info.properties)))
        return _done()

    async def async_unregister_service(self, info: Any) -> Any:
        self.calls.append(("unregister", info.name, dict(info.properties)))
        return _done()

    async def async_close(self) -> None:
        self.closed = True


class Factory:
    def __init__(self, zc: RecordingZeroconf) -> None:
        self.zc = zc
        self.asked: list[str | None] = []

    def __call__(self, ip: str | None) -> RecordingZeroconf:
        self.asked.append(ip)
        return self.zc


class Snapshots:
    """info_provider whose answer the test changes; counts reads."""

    def __init__(self, info: NodeInfo) -> None:
        self.info = info
        self.reads = 0

    def __call__(self) -> NodeInfo:
        self.reads += 1
        return self.info


def a_node(percent: float = 80.0) -> NodeInfo:
    return NodeInfo(node_id=NodeId("3f2a9c0e-77"), name="den.pc", cpu_cores=4,
                    battery=Battery(present=True, on_battery=True, percent=percent))


async def test_start_registers_unique_instance_on_the_given_interface() -> None:
    zc = RecordingZeroconf()
    factory = Factory(zc)
    announcer = ZeroconfAnnouncer(Snapshots(a_node()), 50551, interface="127.0.0.1", zeroconf_factory=factory)
    await announcer.start()

    assert factory.asked == ["127.0.0.1"]
    assert zc.allow_name_change == [False]
    assert announcer.service_name == f"den-pc-3f2a9c0e.{SERVICE_TYPE}"
    (call,) = zc.calls
    assert call[0] == "register" and call[2][b"bat"] == b"on:80" and call[2][b"id"] == b"3f2a9c0e-77"
    assert zc.registered.port == 50551
    assert zc.registered.parsed_addresses() == ["127.0.0.1"]
    assert zc.registered.server == "den-pc-3f2a9c0e.local."


async def test_update_reannounces_only_when_the_txt_changes() -> None:
    zc = RecordingZeroconf()
    snapshots = Snapshots(a_node())
    announcer = ZeroconfAnnouncer(snapshots, 1, interface="127.0.0.1", zeroconf_factory=Factory(zc))
    await announcer.start()

    assert await announcer.update() is False
    snapshots.info = a_node(percent=79.8)  # rounds to the same whole percent
    assert await announcer.update() is False
    snapshots.info = a_node(percent=30)
    assert await announcer.update() is True
    assert await announcer.update(a_node(percent=30)) is False

    assert [c[0] for c in zc.calls] == ["register", "update"]
    assert zc.calls[1][2][b"bat"] == b"on:30"
    assert announcer.txt["bat"] == "on:30"


async def test_close_says_goodbye_once_and_closes_sockets() -> None:
    zc = RecordingZeroconf()
    announcer = ZeroconfAnnouncer(Snapshots(a_node()), 1, interface="127.0.0.1", zeroconf_factory=Factory(zc))
    await announcer.start()
    await announcer.close()
    await announcer.close()
    assert [c[0] for c in zc.calls] == ["register", "unregister"]
    assert zc.closed
    assert announcer.service_name is None
    with pytest.raises(RuntimeError, match="before start"):
        await announcer.update()


async def test_node_id_must_not_change_while_announced() -> None:
    zc = RecordingZeroconf()
    announcer = ZeroconfAnnouncer(Snapshots(a_node()), 1, interface="127.0.0.1", zeroconf_factory=Factory(zc))
    await announcer.start()
    with pytest.raises(ValueError, match="node id changed"):
        await announcer.update(a_node().model_copy(update={"node_id": NodeId("other")}))


async def test_name_taken_by_another_node_is_a_clear_error_and_closes_zeroconf() -> None:
    zc = RecordingZeroconf(refuse_name=True)
    announcer = ZeroconfAnnouncer(Snapshots(a_node()), 1, interface="127.0.0.1", zeroconf_factory=Factory(zc))
    with pytest.raises(DuplicateNode, match="3f2a9c0e-77") as err:
        await announcer.start()
    assert "identity.json" in str(err.value)
    assert zc.closed


async def test_heartbeat_rereads_the_node_every_interval() -> None:
    zc = RecordingZeroconf()
    snapshots = Snapshots(a_node())
    announcer = ZeroconfAnnouncer(snapshots, 1, interface="127.0.0.1", zeroconf_factory=Factory(zc))
    await announcer.start()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            snapshots.info = a_node(percent=10)
        if len(slept) == 4:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await announcer.heartbeat(5.0, sleep=sleep)
    assert slept == [5.0] * 4
    assert snapshots.reads == 1 + 3
    assert [c[0] for c in zc.calls] == ["register", "update"]


def test_labels_fit_dns_and_stay_unique_per_node() -> None:
    long = NodeInfo(node_id=NodeId("abcdef0123456789"), name="x" * 100)
    assert len(instance_label(long).encode()) <= 63
    assert instance_label(long).endswith("-abcdef01")
    assert host_label(NodeInfo(node_id=NodeId("AB:CD"), name="Den PC")) == "den-pc-ab-cd.local."
    assert instance_label(NodeInfo(node_id=NodeId("n2"), name="")) == "covey-n2"


async def test_unknown_interface_name_is_a_config_error() -> None:
    from covey.errors import ConfigError

    announcer = ZeroconfAnnouncer(Snapshots(a_node()), 1, interface="no-such-if0", zeroconf_factory=Factory(RecordingZeroconf()))
    with pytest.raises(ConfigError, match="no-such-if0"):
        await announcer.start()


async def test_heartbeat_survives_an_unexpected_failure() -> None:
    zc = RecordingZeroconf()
    snapshots = Snapshots(a_node())
    announcer = ZeroconfAnnouncer(snapshots, 1, interface="127.0.0.1", zeroconf_factory=Factory(zc))
    await announcer.start()
    rounds: list[float] = []

    async def sleep(seconds: float) -> None:
        rounds.append(seconds)
        if len(rounds) == 1:
            snapshots.info = a_node().model_copy(update={"node_id": NodeId("changed")})  # update raises
        if len(rounds) == 2:
            snapshots.info = a_node(percent=5)
        if len(rounds) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await announcer.heartbeat(1.0, sleep=sleep)
    assert [c[0] for c in zc.calls] == ["register", "update"]
    assert zc.calls[-1][2][b"bat"] == b"on:5"
