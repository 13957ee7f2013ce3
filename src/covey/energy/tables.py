"""The shipped energy tables (src/covey/data/energy/*.csv, sources in its README.md)."""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class CpuRow(_Row):
    match: str
    tdp_watts: float
    cores: int
    threads: int
    source: str


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
    source: str


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("covey").joinpath("data", "energy", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=None)
def cpu_table() -> tuple[CpuRow, ...]:
    return tuple(CpuRow(**r) for r in _rows("cpu_tdp.csv"))  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def device_classes() -> tuple[DeviceClassRow, ...]:
    return tuple(DeviceClassRow(cls=r.pop("class"), **r) for r in _rows("device_classes.csv"))  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def vcpu_coefficients() -> dict[str, VcpuRow]:
    return {r["provider"]: VcpuRow(**r) for r in _rows("vcpu_coefficients.csv")}  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def carbon_table() -> dict[str, CarbonRow]:
    return {r["code"].upper(): CarbonRow(**r) for r in _rows("carbon_intensity.csv")}  # type: ignore[arg-type]


def _norm(s: str) -> str:
    return " ".join(s.lower().replace("(r)", " ").replace("(tm)", " ").replace("cpu", " ").split())


def find_cpu(model_name: str) -> CpuRow | None:
    """The table row whose name is contained in the model name; the longest match wins."""
    name = _norm(model_name)
    hits = [r for r in cpu_table() if re.search(re.escape(_norm(r.match)) + r"(?![0-9a-z])", name)]
    return max(hits, key=lambda r: len(r.match)) if hits else None


def find_device_class(model: str) -> DeviceClassRow | None:
    text = model.lower()
    hits = [r for r in device_classes() if r.match.lower() in text]
    return max(hits, key=lambda r: len(r.match)) if hits else None
