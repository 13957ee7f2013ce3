"""The checked-in generated modules match protos/covey/v1/node.proto (run `make proto` when this fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("node_pb2.py", "node_pb2.pyi", "node_pb2_grpc.py")


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    # Same flags as `make proto`, run from the repository root so embedded paths match.
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-Iprotos", f"--python_out={tmp_path}",
           f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", "protos/covey/v1/node.proto"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"protoc failed: {done.stderr}"
    stale = [name for name in GENERATED
             if (tmp_path / "covey" / "v1" / name).read_text() != (ROOT / "src" / "covey" / "v1" / name).read_text()]
    assert not stale, f"src/covey/v1/{', '.join(stale)} are stale: run `make proto` and commit the result"


def test_generated_modules_describe_the_node_service() -> None:
    from covey.v1 import node_pb2

    service = node_pb2.DESCRIPTOR.services_by_name["Node"]
    assert service.full_name == "covey.v1.Node"
    assert {m.name for m in service.methods} == {"Generate", "Info"}
