"""The TXT codec: round trips, size limits, quantisation, and clear refusals."""

from __future__ import annotations

import pytest

from covey.discovery.txt import MAX_TXT_STRING, SERVICE_TYPE, decode_txt, encode_txt, format_address
from covey.errors import IncompatibleProtocol, InvalidAnnouncement
from covey.types import PROTOCOL_VERSION, Battery, ModelId, ModelOffer, NodeId, NodeInfo

MIB = 1024 * 1024


def a_node(**overrides: object) -> NodeInfo:
    fields: dict[str, object] = dict(
        node_id=NodeId("3f2a9c0e-node"),
        name="den-pc",
        address="10.0.0.2:50551",
        covey_version="0.1.0",
        models=(
            ModelOffer(model_id=ModelId("smollm2-135m-instruct-q4_1"), loaded=True),
            ModelOffer(model_id=ModelId("gemma3-270m"), loaded=False),
        ),
        ram_total_bytes=24576 * MIB,
        ram_free_bytes=20480 * MIB,
        model_ram_cap_bytes=2048 * MIB,
        cpu_cores=8,
        accelerator="cuda",
        tokens_per_second=148.2,
        battery=Battery(present=True, on_battery=True, percent=45.0),
        joules_per_token=0.0213,
        source="zeroconf",
    )
    fields.update(overrides)
    return NodeInfo(**fields)  # type: ignore[arg-type]


def as_wire(txt: dict[str, str]) -> dict[bytes, bytes]:
    """What python-zeroconf hands a browser: bytes keys and values."""
    return {k.encode(): v.encode() for k, v in txt.items()}


def test_service_type_is_the_dns_sd_name() -> None:
    assert SERVICE_TYPE == "_covey._tcp.local."


def test_round_trip_keeps_every_announced_field() -> None:
    node = a_node()
    txt = encode_txt(node)
    assert txt["pv"] == str(PROTOCOL_VERSION)
    assert txt["models"] == "smollm2-135m-instruct-q4_1,gemma3-270m"
    assert txt["loaded"] == "smollm2-135m-instruct-q4_1"
    assert txt["bat"] == "on:45"
    assert txt["jpt"] == "0.0213"

    back = decode_txt(as_wire(txt), "10.0.0.2:50551")

    assert back == node


def test_minimal_node_round_trips_and_omits_empty_keys() -> None:
    node = NodeInfo(node_id=NodeId("n1"), name="pi", address="127.0.0.1:1", source="zeroconf")
    txt = encode_txt(node)
    assert "bat" not in txt and "accel" not in txt and "cap" not in txt and "models" not in txt
    assert decode_txt(txt, "127.0.0.1:1") == node


def test_battery_on_mains_is_announced_as_ac() -> None:
    txt = encode_txt(a_node(battery=Battery(present=True, on_battery=False, percent=99.6)))
    assert txt["bat"] == "ac:100"
    assert decode_txt(txt, "x:1").battery == Battery(present=True, on_battery=False, percent=100.0)


def test_free_ram_is_quantised_so_noise_does_not_reannounce() -> None:
    a = encode_txt(a_node(ram_free_bytes=20480 * MIB + 5 * MIB))
    b = encode_txt(a_node(ram_free_bytes=20480 * MIB + 40 * MIB))
    c = encode_txt(a_node(ram_free_bytes=20480 * MIB + 70 * MIB))
    assert a == b
    assert a != c


def test_many_models_spill_over_keys_each_under_255_bytes() -> None:
    models = tuple(ModelOffer(model_id=ModelId(f"model-number-{i:03d}-q4_k_m"), loaded=i % 3 == 0) for i in range(40))
    node = a_node(models=models)
    txt = encode_txt(node)
    assert "models.1" in txt
    assert all(len(k.encode()) + 1 + len(v.encode()) <= MAX_TXT_STRING for k, v in txt.items())
    assert decode_txt(as_wire(txt), node.address) == node


def test_model_ids_with_commas_and_percents_survive() -> None:
    node = a_node(models=(ModelOffer(model_id=ModelId("odd,name%2C.gguf")), ModelOffer(model_id=ModelId("b"))))
    assert decode_txt(encode_txt(node), node.address).models == node.models


def test_long_name_is_truncated_on_a_character_boundary() -> None:
    txt = encode_txt(a_node(name="é" * 100))
    assert len(txt["name"].encode()) <= 63
    assert txt["name"] == "é" * 31


def test_model_id_too_long_for_dns_says_what_to_do() -> None:
    with pytest.raises(InvalidAnnouncement, match="over the DNS limit of 255"):
        encode_txt(a_node(models=(ModelOffer(model_id=ModelId("m" * 300)),)))


def test_other_protocol_version_is_refused_naming_both_versions() -> None:
    txt = encode_txt(a_node())
    txt["pv"] = str(PROTOCOL_VERSION + 1)
    with pytest.raises(IncompatibleProtocol) as err:
        decode_txt(txt, "10.0.0.2:50551")
    message = str(err.value)
    assert f"protocol {PROTOCOL_VERSION + 1}" in message
    assert f"protocol {PROTOCOL_VERSION}" in message
    assert "den-pc" in message and "10.0.0.2:50551" in message
    assert "upgrade covey" in message


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("ram", "lots", "ram='lots'"),
        ("cores", "-2", "cores='-2'"),
        ("tps", "nan", "tps='nan'"),
        ("bat", "full", "bat='full'"),
        ("bat", "on:x", "bat='on:x'"),
        ("pv", "one", "pv='one'"),
    ],
)
def test_malformed_values_are_named_in_the_error(key: str, value: str, needle: str) -> None:
    txt = encode_txt(a_node())
    txt[key] = value
    with pytest.raises(InvalidAnnouncement, match=needle):
        decode_txt(txt, "10.0.0.2:50551")


def test_missing_id_or_version_is_invalid() -> None:
    txt = encode_txt(a_node())
    with pytest.raises(InvalidAnnouncement, match="without a node id"):
        decode_txt({k: v for k, v in txt.items() if k != "id"}, "h:1")
    with pytest.raises(InvalidAnnouncement, match="no protocol version"):
        decode_txt({k: v for k, v in txt.items() if k != "pv"}, "h:1")


def test_unknown_keys_and_valueless_keys_are_tolerated() -> None:
    wire: dict[bytes | str, bytes | str | None] = {**as_wire(encode_txt(a_node())), b"future": b"x", b"flag": None}
    assert decode_txt(wire, "10.0.0.2:50551").node_id == "3f2a9c0e-node"


def test_format_address_brackets_ipv6() -> None:
    assert format_address("10.0.0.2", 5) == "10.0.0.2:5"
    assert format_address("fe80::1", 5) == "[fe80::1]:5"
