"""A zeroconf removal is a goodbye only when the PTR record came with TTL 0; otherwise it expired.

No sockets: the browser's callback and the record listener are driven with real zeroconf records.
"""

from __future__ import annotations

from zeroconf import DNSPointer, RecordUpdate, ServiceStateChange
from zeroconf.const import _CLASS_IN, _TYPE_PTR

from covey.discovery.txt import SERVICE_TYPE
from covey.discovery.directory import EXPIRED, GOODBYE, DirectoryEvent, NodeDirectory
from covey.discovery.browser import ZeroconfDirectory, _goodbye_listener
from covey.types import NodeId, NodeInfo


def _started(directory: NodeDirectory) -> ZeroconfDirectory:
    zd = ZeroconfDirectory(directory)
    zd._zc = object()  # type: ignore[assignment]  # "started": the callback ignores events before start
    return zd


def _known(zd: ZeroconfDirectory, directory: NodeDirectory, name: str, node_id: str) -> None:
    directory.upsert(NodeInfo(node_id=NodeId(node_id), name=node_id, address="10.0.0.9:50551", source="zeroconf"))
    zd._names[name] = NodeId(node_id)


def _ptr(alias: str, ttl: int) -> RecordUpdate:
    return RecordUpdate(DNSPointer(SERVICE_TYPE, _TYPE_PTR, _CLASS_IN, ttl, alias), None)


def test_a_ptr_record_with_ttl_zero_makes_the_removal_a_goodbye() -> None:
    directory = NodeDirectory()
    events: list[DirectoryEvent] = []
    directory.subscribe(events.append)
    zd = _started(directory)
    name = f"den-pc.{SERVICE_TYPE}"
    _known(zd, directory, name, "aaaa")
    _goodbye_listener(zd._goodbyes).async_update_records(None, 0.0, [_ptr(name, 0)])  # type: ignore[arg-type]
    zd._on_change(None, SERVICE_TYPE, name, ServiceStateChange.Removed)  # type: ignore[arg-type]
    assert events[-1].kind == "removed" and events[-1].reason == GOODBYE


def test_a_removal_without_a_goodbye_is_an_expiry() -> None:
    directory = NodeDirectory()
    events: list[DirectoryEvent] = []
    directory.subscribe(events.append)
    zd = _started(directory)
    name = f"old-laptop.{SERVICE_TYPE}"
    _known(zd, directory, name, "bbbb")
    # A refresh of the record (ordinary TTL) is not a goodbye.
    _goodbye_listener(zd._goodbyes).async_update_records(None, 0.0, [_ptr(name, 4500)])  # type: ignore[arg-type]
    zd._on_change(None, SERVICE_TYPE, name, ServiceStateChange.Removed)  # type: ignore[arg-type]
    assert events[-1].kind == "removed" and events[-1].reason == EXPIRED


def test_other_service_types_are_not_taken_for_our_goodbyes() -> None:
    goodbyes: set[str] = set()
    other = RecordUpdate(DNSPointer("_http._tcp.local.", _TYPE_PTR, _CLASS_IN, 0, "printer._http._tcp.local."), None)
    _goodbye_listener(goodbyes).async_update_records(None, 0.0, [other])  # type: ignore[arg-type]
    assert goodbyes == set()
