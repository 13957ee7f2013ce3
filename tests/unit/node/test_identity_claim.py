"""One identity per running node: a second node on the same data dir, in this process or another,
takes an identity of its own and says which; a released identity goes to the next node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from covey.device_node.host import claim_identity, load_identity


def test_second_node_in_one_process_takes_its_own_identity_and_says_so(tmp_path: Path) -> None:
    first = claim_identity(tmp_path, "den-pc")
    second = claim_identity(tmp_path, "den-pc")
    try:
        assert first.note == "" and first.path.name == "identity.json"
        assert first.identity.node_id == load_identity(tmp_path).node_id  # the data dir's own id
        assert second.identity.node_id != first.identity.node_id and second.path.name == "identity-2.json"
        assert f"with identity.json (pid {os.getpid()})" in second.note
        assert f"takes its own identity {second.identity.node_id} (identity-2.json)" in second.note
    finally:
        second.release()
        first.release()


def test_identities_are_kept_across_restarts_and_a_released_one_is_taken_again(tmp_path: Path) -> None:
    a, b = claim_identity(tmp_path), claim_identity(tmp_path)
    ids = (a.identity.node_id, b.identity.node_id)
    a.release()
    b.release()
    c = claim_identity(tmp_path)
    d = claim_identity(tmp_path)
    try:
        assert (c.identity.node_id, d.identity.node_id) == ids and c.note == ""
    finally:
        c.release()
        d.release()
    c.release()  # twice is harmless


HOLD = """
import sys, time
from pathlib import Path
from covey.device_node.host import claim_identity
claim = claim_identity(Path(sys.argv[1]), "other")
print(claim.identity.node_id, flush=True)
sys.stdin.read()
"""


def test_a_node_in_another_process_holds_the_identity_until_it_ends(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None
        held = holder.stdout.readline().strip()
        mine = claim_identity(tmp_path)
        assert mine.identity.node_id != held and f"(pid {holder.pid})" in mine.note
        mine.release()
    finally:
        holder.kill()  # however it ends, the operating system drops its lock
        holder.wait(10)
    after = claim_identity(tmp_path)
    try:
        assert after.identity.node_id == held and after.note == ""
    finally:
        after.release()
