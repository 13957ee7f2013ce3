"""Refresh the maintained energy tables: download (or read local copies), validate, write to DATA_DIR.

The files land in DATA_DIR/energy-data/, where `covey.energy.tables` looks first, so a refresh
takes effect without reinstalling covey; delete the directory to go back to the shipped copies.
Both tables are validated before either is written, so a bad download changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from covey.energy import tables
from covey.errors import EnergyDataError

logger = logging.getLogger(__name__)

UPSTREAM: dict[str, str] = {
    tables.CPU_FILE: "https://raw.githubusercontent.com/mlco2/codecarbon/master/codecarbon/data/hardware/cpu_power.csv",
    tables.CARBON_FILE: ("https://ourworldindata.org/grapher/carbon-intensity-electricity.csv"
                         "?v=1&csvType=full&useColumnShortNames=false"),
}
"""CodeCarbon's CPU table (MIT) and OWID's carbon intensity of electricity (Ember, Energy Institute; CC BY 4.0)."""

LOCAL_NAMES: dict[str, tuple[str, ...]] = {
    tables.CPU_FILE: ("cpu_power.csv",),
    tables.CARBON_FILE: ("carbon_intensity.csv", "carbon-intensity-electricity.csv"),
}
"""File names looked for in a `--from` directory or under a `--from` base URL (upstream's names too)."""

MIN_CPU_ROWS, MIN_COUNTRIES = 100, 20
SOURCES_FILE = "SOURCES.json"


class RefreshedTable(BaseModel):
    """What one refresh wrote: the file, where its content came from, how many rows, its hash."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: Path
    origin: str
    rows: int
    sha256: str


def http_get(url: str) -> str:
    """GET a text file with httpx (the orchestrator extra); any failure is an EnergyDataError."""
    try:
        import httpx
    except ImportError as exc:
        raise EnergyDataError("downloading needs httpx, which is not installed",
                              hint="pip install 'covey[orchestrator]', or pass --from DIR with local copies") from exc
    try:
        resp = httpx.get(url, timeout=30.0, follow_redirects=True, headers={"User-Agent": "covey-energy-refresh"})
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise EnergyDataError(f"cannot download {url}: {exc}",
                              hint="check the network, or download the file yourself and pass --from DIR") from exc
    return resp.text


def _read_source(name: str, source: str | None, fetch: Callable[[str], str]) -> tuple[str, str]:
    """(text, origin) for one table from upstream, a base URL or a directory."""
    if source is None:
        return fetch(UPSTREAM[name]), UPSTREAM[name]
    if source.startswith(("http://", "https://")):
        base = source.rstrip("/")
        errors = []
        for local in LOCAL_NAMES[name]:
            try:
                return fetch(f"{base}/{local}"), f"{base}/{local}"
            except EnergyDataError as exc:
                errors.append(exc.message)
        raise EnergyDataError(f"none of {', '.join(LOCAL_NAMES[name])} could be fetched from {base}: "
                              + "; ".join(errors))
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise EnergyDataError(f"--from {source!r} is neither a directory nor an http(s) URL",
                              hint="pass a directory holding cpu_power.csv and carbon_intensity.csv, or a base URL")
    for local in LOCAL_NAMES[name]:
        path = folder / local
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8"), str(path)
            except (OSError, UnicodeDecodeError) as exc:
                raise EnergyDataError(f"cannot read {path}: {exc}") from exc
    raise EnergyDataError(f"{folder} has no {' or '.join(LOCAL_NAMES[name])}",
                          hint=f"copy it there from {UPSTREAM[name]}")


def _dict_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def _cpu_csv(text: str, origin: str) -> tuple[str, int]:
    rows = tables.parse_cpu_rows(_dict_rows(text), where=origin)
    if len(rows) < MIN_CPU_ROWS:
        raise EnergyDataError(f"{origin} has only {len(rows)} CPU rows (expected at least {MIN_CPU_ROWS}): "
                              "not CodeCarbon's cpu_power.csv?")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    threads = any(r.threads for r in rows)
    w.writerow(["Name", "TDP"] + (["threads"] if threads else []))
    for r in rows:
        w.writerow([r.name, f"{r.tdp_watts:g}"] + ([r.threads or ""] if threads else []))
    return out.getvalue(), len(rows)


def _carbon_csv(text: str, origin: str) -> tuple[str, int]:
    latest = tables.parse_carbon_rows(_dict_rows(text), where=origin)
    if tables.WORLD not in latest or len(latest) < MIN_COUNTRIES:
        raise EnergyDataError(f"{origin} has {len(latest)} coded countries and "
                              f"{'a' if tables.WORLD in latest else 'no'} World row "
                              f"(expected at least {MIN_COUNTRIES} and World): not OWID's carbon-intensity-electricity?")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["Entity", "Code", "Year", tables.CARBON_VALUE_COLUMN])
    for r in sorted(latest.values(), key=lambda r: r.country):
        w.writerow([r.country, tables.OWID_WORLD if r.code == tables.WORLD else r.code, r.year, repr(r.g_co2e_per_kwh)])
    return out.getvalue(), len(latest)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def refresh_data(data_dir: Path, source: str | None = None, *,
                 fetch: Callable[[str], str] = http_get, clock: Callable[[], float] = time.time) -> list[RefreshedTable]:
    """Fetch, validate and write both tables into `data_dir`/energy-data/; returns what was written.

    `source` None downloads from `UPSTREAM`; an http(s) URL is a base holding the files; anything else
    is a local directory. The CPU table is written as `Name,TDP`; the carbon table keeps the latest
    year per country (OWID's columns), which is all covey looks up.
    """
    prepared = []
    for name, convert in ((tables.CPU_FILE, _cpu_csv), (tables.CARBON_FILE, _carbon_csv)):
        text, origin = _read_source(name, source, fetch)
        body, n = convert(text, origin)
        prepared.append((name, body, origin, n, hashlib.sha256(text.encode()).hexdigest()))
    out_dir = Path(data_dir) / tables.OVERRIDE_DIR
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, body, origin, n, digest in prepared:
            _write_atomic(out_dir / name, body)
            written.append(RefreshedTable(name=name, path=out_dir / name, origin=origin, rows=n, sha256=digest))
        _write_atomic(out_dir / SOURCES_FILE, json.dumps(
            {t.name: {"origin": t.origin, "rows": t.rows, "sha256_of_input": t.sha256, "fetched_at": clock()}
             for t in written}, indent=2) + "\n")
    except OSError as exc:
        raise EnergyDataError(f"cannot write the energy tables to {out_dir}: {exc}",
                              hint="check that DATA_DIR is writable") from exc
    for t in written:
        logger.info("energy table %s: %d rows from %s", t.name, t.rows, t.origin)
    return written
