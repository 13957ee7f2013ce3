"""The CLI's pairing flags: `node join --insecure` warns, a bad `--invite` fails before anything is served;
`covey cluster` commands fail and expire through the CLI's own runner (one error line, exit codes)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from covey.cli import app


def text(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_insecure_warns_and_a_bad_invite_code_fails_clearly(tmp_path: Path) -> None:
    runner = CliRunner()
    insecure = runner.invoke(app, ["node", "join", "--insecure", "--host", "127.0.0.1", "--port", "0", "--no-announce",
                                   "--model", "no-such-model", "--data-dir", str(tmp_path)])
    assert "insecure mode" in text(insecure.output) and "anyone on this network" in text(insecure.output)
    bad = runner.invoke(app, ["node", "join", "--invite", "abcde-fghij", "--host", "127.0.0.1", "--port", "0",
                              "--no-announce", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert "a code has 40" in text(bad.output) and "covey cluster invite" in text(bad.output)
    assert not (tmp_path / "cluster" / "device.pem").exists()


def test_revoke_and_status_on_the_ca_host(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["cluster", "init", "--data-dir", str(tmp_path)]).exit_code == 0
    status = runner.invoke(app, ["cluster", "status", "--data-dir", str(tmp_path)])
    assert status.exit_code == 0 and "(CA host)" in status.output
    unknown = runner.invoke(app, ["node", "revoke", "kitchen", "--data-dir", str(tmp_path)])
    assert unknown.exit_code == 1 and "no device named 'kitchen'" in text(unknown.output)
    again = runner.invoke(app, ["cluster", "init", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1 and "--force" in text(again.output)


def test_invite_errors_and_expiry_go_through_the_cli_runner(tmp_path: Path) -> None:
    runner = CliRunner()
    bare = runner.invoke(app, ["cluster", "invite", "--host", "127.0.0.1", "--port", "0", "--ttl", "0.2", "--no-qr",
                               "--data-dir", str(tmp_path / "bare")])
    assert bare.exit_code == 1 and "Traceback" not in bare.output
    assert text(bare.output).startswith("error: only the host that ran `covey cluster init` can invite devices")
    assert runner.invoke(app, ["cluster", "init", "--data-dir", str(tmp_path / "ca")]).exit_code == 0
    unused = runner.invoke(app, ["cluster", "invite", "--host", "127.0.0.1", "--port", "0", "--ttl", "0.2",
                                 "--no-qr", "--data-dir", str(tmp_path / "ca")])
    assert unused.exit_code == 3 and "the invite expired unused" in unused.output
