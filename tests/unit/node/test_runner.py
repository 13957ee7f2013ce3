"""The node runner's early port check: a port someone listens on fails fast, a free one passes."""

from __future__ import annotations

import socket

import pytest

from covey.device_node.runner import check_port_free
from covey.errors import PortInUse


def test_taken_port_is_refused_naming_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse) as exc:
            check_port_free("127.0.0.1", port)
    assert f"127.0.0.1:{port}" in str(exc.value) and "--port" in str(exc.value)


def test_free_port_and_port_zero_pass() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", 0)
