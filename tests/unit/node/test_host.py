"""Node identity: made once per data directory, kept across restarts, remade if the file is damaged."""

from __future__ import annotations

from pathlib import Path

from covey.device_node.host import load_identity, read_host


def test_identity_is_stable_per_data_dir(tmp_path: Path) -> None:
    a1 = load_identity(tmp_path / "a", "den-pc")
    a2 = load_identity(tmp_path / "a", "other-name")
    b = load_identity(tmp_path / "b", "den-pc")
    assert a1.node_id == a2.node_id != b.node_id
    assert a2.name == "other-name" and len(a1.node_id) == 16


def test_damaged_identity_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "identity.json").write_text("{not json")
    ident = load_identity(tmp_path)
    assert len(ident.node_id) == 16 and ident.name
    assert load_identity(tmp_path).node_id == ident.node_id


def test_read_host_reports_this_machine() -> None:
    facts = read_host()
    assert facts.cpu_cores >= 1 and facts.ram_total_bytes >= facts.ram_free_bytes > 0
