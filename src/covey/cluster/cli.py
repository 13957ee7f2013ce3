"""`covey cluster init|invite|serve|status` and `covey node revoke`: a thin layer over covey.cluster."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from covey.cli_output import err, print_error
from covey.cli_run import load_settings, run
from covey.errors import CoveyError

app = typer.Typer(help="Pair devices into one cluster: a private CA and mutual TLS on every link.",
                  no_args_is_help=True)
console = Console()

DataDir = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="all covey state lives here")
ConfigFile = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)")
Verbose = typer.Option(0, "--verbose", "-v", count=True, help="more log output (-v info, -vv debug)")


def _fail(exc: CoveyError) -> typer.Exit:
    print_error(exc)
    return typer.Exit(1)


def _store(settings):
    from covey.cluster.store import ClusterStore

    return ClusterStore(settings.data_dir, cert_days=settings.cluster.cert_days)


def _device_name(settings) -> str:
    return settings.node.name or socket.gethostname().split(".")[0] or "covey"


@app.command("init")
def init(
    force: bool = typer.Option(False, "--force", help="replace an existing cluster (every device must pair again)"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Create a cluster on this host: its CA, and this host's certificate for `covey ask` and its own node."""
    from covey.cluster import pki
    from covey.device_node.host import load_identity

    settings = load_settings(verbose, data_dir=data_dir, config_file=config)
    store = _store(settings)
    identity = load_identity(settings.data_dir, settings.node.name)
    try:
        ca = store.init(identity.node_id, _device_name(settings), force=force)
    except CoveyError as exc:
        raise _fail(exc) from None
    console.print(f"cluster [bold]{store.cluster_id()}[/bold] created in {store.dir}", highlight=False)
    console.print(f"CA fingerprint (SHA-256): {pki.fingerprint_text(ca)}", highlight=False, soft_wrap=True)
    console.print("add a device: `covey cluster invite` here, then `covey node join --invite CODE` there",
                  highlight=False)


@app.command("invite")
def invite(
    host: str = typer.Option("0.0.0.0", help="address the enrolment listener binds while the invite is open"),
    port: Optional[int] = typer.Option(None, help="enrolment port (default cluster.enrol_port); 0 picks one"),
    address: Optional[str] = typer.Option(None, help="IPv4 address the joining device reaches this host at "
                                          "(default: the bind address, or this host's first LAN address)"),
    ttl: Optional[float] = typer.Option(None, help="seconds the code stays valid (default 600)"),
    qr: bool = typer.Option(True, "--qr/--no-qr", help="also show the code as a QR code"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Print a one-time invite code and wait (up to its expiry) for a device to join with it."""
    from covey.cluster.enrol import EnrolmentListener
    from covey.cluster.invite import qr_text

    settings = load_settings(verbose, data_dir=data_dir, config_file=config)
    ttl_s = ttl if ttl is not None else settings.cluster.invite_ttl_s

    async def main() -> None:
        listener = EnrolmentListener(_store(settings), host=host,
                                     port=settings.cluster.enrol_port if port is None else port)
        await listener.start()
        try:
            code = listener.open_invite(address or _advertised(host), ttl_s).code()
            valid = f"{ttl_s / 60:.0f} min" if ttl_s >= 60 else f"{ttl_s:.0f} s"
            console.print(f"invite code (valid {valid}, once): [bold]{code}[/bold]", highlight=False, soft_wrap=True)
            picture = qr_text(code) if qr else None
            if picture:
                console.print(picture, markup=False, highlight=False)
            console.print(f"on the new device: covey node join --invite {code}", highlight=False, soft_wrap=True)
            sys.stdout.flush()
            loop = asyncio.get_running_loop()
            end = loop.time() + ttl_s
            while not [j for j in listener.joined if not j.renewal] and loop.time() < end:
                listener.changed.clear()
                try:
                    await asyncio.wait_for(listener.changed.wait(), end - loop.time())
                except asyncio.TimeoutError:
                    break
            joined = [j for j in listener.joined if not j.renewal]
            if not joined:
                raise typer.Exit(3)
            for j in joined:
                console.print(f"joined: [bold]{j.name}[/bold] ({j.node_id})", highlight=False)
        finally:
            await listener.close()

    try:
        run(main())
    except typer.Exit as exc:
        if exc.exit_code == 3:
            err.print("the invite expired unused")
        raise


@app.command("serve")
def serve(
    host: str = typer.Option("0.0.0.0", help="address the listener binds"),
    port: Optional[int] = typer.Option(None, help="port (default cluster.enrol_port)"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Run the CA host's listener for members: certificate renewals and the signed revocation list."""
    from covey.cluster.enrol import EnrolmentListener

    settings = load_settings(verbose, data_dir=data_dir, config_file=config)

    async def main() -> None:
        listener = EnrolmentListener(_store(settings), host=host,
                                     port=settings.cluster.enrol_port if port is None else port)
        await listener.start()
        console.print(f"renewals and revocations served on {host}:{listener.port}", highlight=False)
        try:
            await asyncio.Event().wait()
        finally:
            await listener.close()

    run(main())


@app.command("status")
def status(data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile) -> None:
    """This device's cluster identity, and on the CA host the devices paired and revoked."""
    from covey.cluster import pki

    settings = load_settings(0, data_dir=data_dir, config_file=config)
    store = _store(settings)
    try:
        store.require_member()
        cert = store.device_cert()
        console.print(f"cluster {store.cluster_id()}  CA {pki.fingerprint_text(store.ca_cert())}", highlight=False,
                      soft_wrap=True)
        console.print(f"this device: node {pki.cert_node_id(cert)}, certificate valid until "
                      f"{cert.not_valid_after_utc:%Y-%m-%d}{' (CA host)' if store.is_authority() else ''}",
                      highlight=False)
        revoked = store.revoked()
        for e in store.issued():
            mark = " [red]revoked[/red]" if revoked.covers(serial=int(e["serial"])) else ""
            console.print(f"  paired {e['name']} ({e['node_id']}) until {e['not_after'][:10]}{mark}", highlight=False)
    except CoveyError as exc:
        raise _fail(exc) from None


def revoke(
    name: str = typer.Argument(..., help="name or node id of the paired device"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile,
) -> None:
    """Remove a paired device from the cluster: its certificates are refused from now on."""
    settings = load_settings(0, data_dir=data_dir, config_file=config)
    try:
        hits = _store(settings).revoke(name)
    except CoveyError as exc:
        raise _fail(exc) from None
    for e in hits:
        console.print(f"revoked {e['name']} ({e['node_id']}), certificate {e['serial']}", highlight=False)


def join_with_invite(settings, code: str) -> str:
    """Enrol this device with `code` before it serves (`covey node join --invite`); returns a line to print."""
    from covey.cluster.enrol import join
    from covey.device_node.host import load_identity

    identity = load_identity(settings.data_dir, settings.node.name)
    store = _store(settings)
    cert = asyncio.run(join(store, code, node_id=identity.node_id, name=identity.name))
    return (f"paired with cluster {store.cluster_id()} as {identity.name} ({identity.node_id}); "
            f"certificate valid until {cert.not_valid_after_utc:%Y-%m-%d}")


def _advertised(host: str) -> str:
    if host not in ("0.0.0.0", ""):
        return host
    from covey.discovery.txt import local_addresses

    return local_addresses()[0]
