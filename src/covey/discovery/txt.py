"""DNS-SD TXT record codec for ``_covey._tcp.local.``, shared by the announcer and the directory.

A node's TXT record is a summary of its :class:`~covey.types.NodeInfo`, small enough for one mDNS
packet and readable by any DNS-SD browser (``avahi-browse -r``, ``dig -p 5353 ... TXT``)::

    pv=1 id=3f2a... name=den-pc ver=0.1.0 models=smollm2-135m-instruct-q4_1 loaded=... ram=24576
    free=20480 cores=8 accel=cuda tps=148.2 jpt=0.021 bat=on:45 cap=2048

Sizes are MiB, ``bat`` is ``on:<percent>`` when running on battery, ``ac:<percent>`` when plugged
in, absent without a battery. Noisy readings are quantised (free RAM to 64 MiB, battery to whole
percent) so a node re-announces when something meaningful changed, not on every heartbeat.
The full, precise picture comes from the node's gRPC ``Info`` call.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from covey.errors import ConfigError, IncompatibleProtocol, InvalidAnnouncement
from covey.types import MB, SUPPORTED_PROTOCOLS, Battery, ModelId, ModelOffer, NodeId, NodeInfo, spoken_protocols

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncZeroconf

SERVICE_TYPE: Final = "_covey._tcp.local."

MAX_TXT_STRING: Final = 255
"""A DNS TXT character-string holds at most 255 bytes, ``key=value`` included."""

FREE_RAM_STEP_MIB: Final = 64
"""Free RAM is announced rounded down to this step so small fluctuations do not re-announce."""

_LIST_KEYS: Final = ("models", "loaded")
_MAX_NAME_BYTES: Final = 63


def encode_txt(info: NodeInfo) -> dict[str, str]:
    """Summarise ``info`` as TXT key/values; every ``key=value`` string stays under 255 bytes."""
    txt: dict[str, str] = {
        "pv": str(info.protocol_version),
        "id": str(info.node_id),
        "name": _truncate_utf8(info.name, _MAX_NAME_BYTES),
    }
    if info.covey_version:
        txt["ver"] = info.covey_version
    txt.update(_encode_list("models", [m.model_id for m in info.models]))
    txt.update(_encode_list("loaded", [m.model_id for m in info.models if m.loaded]))
    txt["ram"] = str(info.ram_total_bytes // MB)
    free_mib = info.ram_free_bytes // MB
    txt["free"] = str(free_mib - free_mib % FREE_RAM_STEP_MIB)
    if info.model_ram_cap_bytes:
        txt["cap"] = str(info.model_ram_cap_bytes // MB)
    txt["cores"] = str(info.cpu_cores)
    if info.accelerator:
        txt["accel"] = info.accelerator
    txt["tps"] = f"{info.tokens_per_second:.1f}"
    txt["jpt"] = _significant(info.joules_per_token, 3)
    if info.battery.present:
        txt["bat"] = f"{'on' if info.battery.on_battery else 'ac'}:{round(info.battery.percent)}"
    if info.light_only:
        txt["light"] = "1"
    if info.note:
        txt["note"] = _truncate_utf8(info.note, 200)
    for key, value in txt.items():
        size = len(key.encode()) + 1 + len(value.encode())
        if size > MAX_TXT_STRING:
            raise InvalidAnnouncement(
                f"TXT entry {key!r} of node {info.node_id} is {size} bytes, over the DNS limit of "
                f"{MAX_TXT_STRING}",
                hint="shorten the value (node name, accelerator or model id) and restart the node",
            )
    return txt


def decode_txt(properties: Mapping[bytes, bytes | None] | Mapping[str, str | None], address: str) -> NodeInfo:
    """Rebuild a :class:`NodeInfo` (source ``zeroconf``) from TXT ``properties`` seen at ``address``.

    Raises :class:`IncompatibleProtocol` when the node speaks another protocol major and
    :class:`InvalidAnnouncement` when the record is malformed. Unknown keys are ignored, so a
    newer node of the same major can add keys.
    """
    txt = {_text(k): _text(v) if v is not None else "" for k, v in properties.items()}
    where = f"the node at {address or 'an unknown address'}"
    if "id" not in txt or not txt["id"]:
        raise InvalidAnnouncement(f"{where} announces {SERVICE_TYPE} without a node id (TXT key 'id')")
    if "pv" not in txt:
        raise InvalidAnnouncement(f"{where} announces no protocol version (TXT key 'pv')")
    name = txt.get("name") or txt["id"]
    where = f"node {name!r} ({txt['id']}) at {address or 'an unknown address'}"
    version = _int(txt, "pv", where)
    if version not in SUPPORTED_PROTOCOLS:
        raise IncompatibleProtocol(
            f"{where} speaks covey protocol {version}, this side speaks protocol "
            + spoken_protocols(prefix="")
        )
    loaded = set(_decode_list(txt, "loaded"))
    models = tuple(
        ModelOffer(model_id=ModelId(m), loaded=m in loaded) for m in _decode_list(txt, "models")
    )
    return NodeInfo(
        node_id=NodeId(txt["id"]),
        name=name,
        address=address,
        protocol_version=version,
        covey_version=txt.get("ver", ""),
        models=models,
        ram_total_bytes=_int(txt, "ram", where) * MB,
        ram_free_bytes=_int(txt, "free", where) * MB,
        model_ram_cap_bytes=_int(txt, "cap", where) * MB,
        cpu_cores=_int(txt, "cores", where),
        accelerator=txt.get("accel", ""),
        tokens_per_second=_float(txt, "tps", where),
        joules_per_token=_float(txt, "jpt", where),
        battery=_decode_battery(txt, where),
        light_only=txt.get("light") == "1",
        note=txt.get("note", ""),
        source="zeroconf",
    )


def format_address(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _encode_list(key: str, items: list[str]) -> dict[str, str]:
    """Comma-separated ids under ``key``, spilling into ``key.1``, ``key.2``... past 255 bytes."""
    if not items:
        return {}
    out: dict[str, str] = {}
    chunk: list[str] = []
    for item in (_escape(i) for i in items):
        candidate = ",".join([*chunk, item])
        slot = key if not out else f"{key}.{len(out)}"
        if chunk and len(slot.encode()) + 1 + len(candidate.encode()) > MAX_TXT_STRING:
            out[slot] = ",".join(chunk)
            chunk = [item]
        else:
            chunk.append(item)
    out[key if not out else f"{key}.{len(out)}"] = ",".join(chunk)
    return out


def _decode_list(txt: dict[str, str], key: str) -> list[str]:
    parts = [txt.get(key, "")]
    n = 1
    while f"{key}.{n}" in txt:
        parts.append(txt[f"{key}.{n}"])
        n += 1
    return [_unescape(i) for part in parts for i in part.split(",") if i]


def _decode_battery(txt: dict[str, str], where: str) -> Battery:
    raw = txt.get("bat")
    if not raw:
        return Battery()
    state, _, percent = raw.partition(":")
    if state not in ("on", "ac"):
        raise InvalidAnnouncement(f"{where} announces bat={raw!r}; expected 'on:<percent>' or 'ac:<percent>'")
    try:
        value = float(percent)
    except ValueError:
        raise InvalidAnnouncement(f"{where} announces bat={raw!r}; the percent is not a number") from None
    return Battery(present=True, on_battery=state == "on", percent=min(max(value, 0.0), 100.0))


def _int(txt: dict[str, str], key: str, where: str) -> int:
    raw = txt.get(key, "") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise InvalidAnnouncement(f"{where} announces {key}={raw!r}; expected a whole number") from None
    if value < 0:
        raise InvalidAnnouncement(f"{where} announces {key}={raw!r}; expected a number >= 0")
    return value


def _float(txt: dict[str, str], key: str, where: str) -> float:
    raw = txt.get(key, "") or "0"
    try:
        value = float(raw)
    except ValueError:
        raise InvalidAnnouncement(f"{where} announces {key}={raw!r}; expected a number") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidAnnouncement(f"{where} announces {key}={raw!r}; expected a finite number >= 0")
    return value


def _significant(value: float, digits: int) -> str:
    if value <= 0 or not math.isfinite(value):
        return "0"
    return f"{value:.{digits}g}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _escape(item: str) -> str:
    return item.replace("%", "%25").replace(",", "%2C")


def _unescape(item: str) -> str:
    return re.sub(r"%(25|2C)", lambda m: "%" if m.group(1) == "25" else ",", item)


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    return data[:limit].decode("utf-8", errors="ignore") if len(data) > limit else text


def resolve_interface(interface: str | None) -> str | None:
    """The IPv4 address to announce or browse on, from an IP or an interface name; None means all.

    ``None``, ``""`` and ``0.0.0.0`` mean every interface.
    """
    if not interface or interface == "0.0.0.0":
        return None
    try:
        return str(ipaddress.ip_address(interface))
    except ValueError:
        pass
    import psutil

    interfaces = psutil.net_if_addrs()
    if interface not in interfaces:
        raise ConfigError(
            f"network interface {interface!r} does not exist here (known: {', '.join(sorted(interfaces))})",
            hint="pass an interface name from that list or one of its IP addresses",
        )
    for addr in interfaces[interface]:
        if addr.family == socket.AF_INET:
            return str(addr.address)
    raise ConfigError(
        f"network interface {interface!r} has no IPv4 address",
        hint="bring the interface up with an address, or pass another interface or IP",
    )


def local_addresses() -> list[str]:
    """IPv4 addresses of the interfaces that are up, loopback last (used when announcing on all)."""
    import psutil

    stats = psutil.net_if_stats()
    found: list[str] = []
    loopback: list[str] = []
    for name, addrs in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for addr in addrs:
            if addr.family == socket.AF_INET:
                (loopback if addr.address.startswith("127.") else found).append(str(addr.address))
    return found or loopback or ["127.0.0.1"]


def open_zeroconf(ip: str | None) -> AsyncZeroconf:
    """An IPv4 AsyncZeroconf on one interface address, or on all interfaces when ``ip`` is None."""
    from zeroconf import InterfaceChoice, IPVersion
    from zeroconf.asyncio import AsyncZeroconf

    interfaces = [ip] if ip else InterfaceChoice.All
    return AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
