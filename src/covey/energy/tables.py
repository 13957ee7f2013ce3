"""The energy tables (sources and licences in src/covey/data/energy/README.md).

`cpu_power.csv` (CodeCarbon) and `carbon_intensity.csv` (Ember via Our World in Data) are maintained
upstream; `covey energy refresh-data` writes fresh copies to DATA_DIR/energy-data/, which take
precedence over the copies shipped in the package. Every lookup takes that directory as an argument
(no module-level settings); the parsed tables are cached per file and modification time.
"""

from __future__ import annotations

import csv
import re
import statistics
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from covey.errors import EnergyDataError

OVERRIDE_DIR = "energy-data"
CPU_FILE = "cpu_power.csv"
CARBON_FILE = "carbon_intensity.csv"
CARBON_VALUE_COLUMN = "Carbon intensity of electricity - gCO2/kWh"
WORLD = "WORLD"
OWID_WORLD = "OWID_WRL"

# The two-letter codes the earlier table used, so `region = "FR"` keeps working (ISO 3166-1).
ISO2_TO_ISO3 = {
    "AU": "AUS", "AT": "AUT", "BE": "BEL", "BR": "BRA", "CA": "CAN", "CH": "CHE", "CN": "CHN", "DE": "DEU",
    "DK": "DNK", "ES": "ESP", "FI": "FIN", "FR": "FRA", "GB": "GBR", "UK": "GBR", "IE": "IRL", "IN": "IND",
    "ID": "IDN", "IT": "ITA", "JP": "JPN", "KR": "KOR", "MX": "MEX", "NL": "NLD", "NO": "NOR", "PL": "POL",
    "PT": "PRT", "SE": "SWE", "US": "USA", "ZA": "ZAF",
}


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class CpuRow(_Row):
    name: str
    tdp_watts: float
    threads: int | None = None
    source: str = "codecarbon"


class CpuMatch(_Row):
    """The rows of the CPU table that name this processor, and the TDP taken from them."""

    rows: tuple[CpuRow, ...]
    tdp_watts: float
    file: str

    @property
    def match(self) -> str:
        return self.rows[0].name

    @property
    def threads(self) -> int | None:
        known = {r.threads for r in self.rows if r.threads}
        return known.pop() if len(known) == 1 else None

    def describe(self) -> str:
        tdps = sorted({r.tdp_watts for r in self.rows})
        if len(tdps) == 1:
            return f"row '{self.match}' = {self.tdp_watts:g} W"
        return (f"{len(self.rows)} rows named '{self.match}' ({tdps[0]:g}-{tdps[-1]:g} W), "
                f"median {self.tdp_watts:g} W")


class DeviceClassRow(_Row):
    cls: str
    match: str
    idle_watts: float
    max_watts: float
    source: str


class VcpuRow(_Row):
    provider: str
    min_watts_per_vcpu: float
    max_watts_per_vcpu: float
    source: str


class CarbonRow(_Row):
    code: str
    country: str
    year: int
    g_co2e_per_kwh: float
    source: str = "ember-owid"


def table_path(name: str, data_dir: Path | None = None) -> Path:
    """DATA_DIR/energy-data/NAME when a refreshed copy exists there, else the shipped file."""
    if data_dir is not None:
        override = Path(data_dir) / OVERRIDE_DIR / name
        if override.is_file():
            return override
    return Path(str(resources.files("covey").joinpath("data", "energy", name)))


def _read(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EnergyDataError(f"cannot read the energy table {path}: {exc}") from exc
    return list(csv.DictReader(text.splitlines()))


def _cached(path: Path, parse):
    return parse(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _cpu_rows(path: str, _mtime: int) -> tuple[CpuRow, ...]:
    return parse_cpu_rows(_read(Path(path)), where=path)


def parse_cpu_rows(rows: list[dict[str, str]], where: str = "cpu_power.csv") -> tuple[CpuRow, ...]:
    """CodeCarbon's `Name,TDP` rows (an optional `threads` column is used when present)."""
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            name, tdp = r["Name"].strip(), float(r["TDP"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EnergyDataError(f"{where} line {i}: expected columns Name,TDP with a number, got {r!r}") from exc
        if not name or not 0 < tdp < 1000:
            raise EnergyDataError(f"{where} line {i}: implausible CPU row {name!r} with TDP {tdp:g} W")
        threads = r.get("threads") or r.get("Threads")
        out.append(CpuRow(name=name, tdp_watts=tdp, threads=int(threads) if threads else None))
    return tuple(out)


def cpu_table(data_dir: Path | None = None) -> tuple[CpuRow, ...]:
    return _cached(table_path(CPU_FILE, data_dir), _cpu_rows)


@lru_cache(maxsize=None)
def device_classes() -> tuple[DeviceClassRow, ...]:
    rows = _read(table_path("device_classes.csv"))
    return tuple(DeviceClassRow(cls=r.pop("class"), **r) for r in rows)


@lru_cache(maxsize=None)
def vcpu_coefficients() -> dict[str, VcpuRow]:
    return {r["provider"]: VcpuRow(**r) for r in _read(table_path("vcpu_coefficients.csv"))}


@lru_cache(maxsize=8)
def _carbon_rows(path: str, _mtime: int) -> dict[str, CarbonRow]:
    return parse_carbon_rows(_read(Path(path)), where=path)


def parse_carbon_rows(rows: list[dict[str, str]], where: str = "carbon_intensity.csv") -> dict[str, CarbonRow]:
    """OWID's `Entity,Code,Year,<intensity>` rows -> the latest year per coded country (and WORLD).

    Aggregates without a code (continents, 'EU (Ember)', income groups) are left out.
    """
    latest: dict[str, CarbonRow] = {}
    for i, r in enumerate(rows, start=2):
        try:
            code, year, value = (r["Code"] or "").strip().upper(), int(r["Year"]), float(r[CARBON_VALUE_COLUMN])
            country = r["Entity"].strip()
        except (KeyError, TypeError, ValueError) as exc:
            raise EnergyDataError(f"{where} line {i}: expected columns Entity,Code,Year,'{CARBON_VALUE_COLUMN}' "
                              f"with numbers, got {r!r}") from exc
        if not code:
            continue
        if not 0 <= value < 2500 or not 1990 <= year <= 2100:
            raise EnergyDataError(f"{where} line {i}: implausible carbon intensity {value:g} g/kWh for {country} {year}")
        code = WORLD if code == OWID_WORLD else code
        old = latest.get(code)
        if old is None or year > old.year:
            latest[code] = CarbonRow(code=code, country=country, year=year, g_co2e_per_kwh=value)
    return latest


def carbon_table(data_dir: Path | None = None) -> dict[str, CarbonRow]:
    return _cached(table_path(CARBON_FILE, data_dir), _carbon_rows)


def find_carbon(region: str, data_dir: Path | None = None) -> CarbonRow | None:
    """A country by ISO 3166-1 alpha-3 code, a two-letter code the old table knew, or its name."""
    table = carbon_table(data_dir)
    key = region.strip().upper()
    key = ISO2_TO_ISO3.get(key, key)
    if key in ("WORLD", "WRL", OWID_WORLD):
        key = WORLD
    if key in table:
        return table[key]
    by_name = {r.country.upper(): r for r in table.values()}
    return by_name.get(region.strip().upper())


_NOISE = re.compile(
    r"\((?:r|tm|c)\)|®|™|\bcpu\b|\bprocessor\b|\bwith radeon(?: \w+)* graphics\b|\b\d+-core\b|@.*$"
    r"|\b\d+(?:th|st|nd|rd) gen\b|\(\d+w\)")


def normalise_cpu_name(name: str) -> str:
    """Lower case, without (R)/(TM), 'CPU', 'Processor', 'N-Core', 'with Radeon Graphics', '@ 2.40GHz'."""
    text = _NOISE.sub(" ", name.lower())
    return " ".join(text.replace(",", " ").split())


@lru_cache(maxsize=8)
def _by_normalised(rows: tuple[CpuRow, ...]) -> dict[str, tuple[CpuRow, ...]]:
    groups: dict[str, list[CpuRow]] = {}
    for r in rows:
        groups.setdefault(normalise_cpu_name(r.name), []).append(r)
    return {k: tuple(v) for k, v in groups.items() if k}


def find_cpu(model_name: str, data_dir: Path | None = None) -> CpuMatch | None:
    """The table rows whose normalised name appears in the normalised model name as whole words.

    The longest such name wins (so 'i7-8700K' beats 'i7-8700'); a name followed by more letters or
    digits does not match ('i7-870' is not 'i7-87000'); a family alone ('AMD EPYC') matches nothing.
    Several rows with one name (CodeCarbon lists some chips once per TDP variant) give their median.
    """
    name = normalise_cpu_name(model_name)
    if not name:
        return None
    groups = _by_normalised(cpu_table(data_dir))
    # a substring test first: the whole-word pattern is compiled only for the few names it lets through
    hits = [k for k in groups if k in name and re.search(r"(?<![0-9a-z])" + re.escape(k) + r"(?![0-9a-z])", name)]
    if not hits:
        return None
    best = max(hits, key=len)
    rows = groups[best]
    return CpuMatch(rows=rows, tdp_watts=statistics.median(r.tdp_watts for r in rows),
                    file=str(table_path(CPU_FILE, data_dir)))


def find_device_class(model: str) -> DeviceClassRow | None:
    text = model.lower()
    hits = [r for r in device_classes() if r.match.lower() in text]
    return max(hits, key=lambda r: len(r.match)) if hits else None
