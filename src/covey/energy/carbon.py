"""Grid carbon intensity: a value you set, else your region from the shipped table, else the world."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from covey.energy import tables
from covey.errors import ConfigError
from covey.settings import EnergySettings, Settings

J_PER_KWH = 3.6e6


class CarbonIntensity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    g_per_kwh: float = Field(ge=0.0, description="grams CO2e per kWh of electricity")
    source: str = Field(description="where the figure comes from, e.g. 'ember-owid:FRA:2024'")

    def grams(self, joules: float, pue: float = 1.0) -> float:
        """gCO2e for device energy in joules, scaled by the room's PUE."""
        return joules * pue / J_PER_KWH * self.g_per_kwh


def resolve_carbon(settings: Settings | EnergySettings | None = None, *, data_dir: Path | None = None) -> CarbonIntensity:
    """User value > region table > world average; the source says which row of which file was used.

    The table is DATA_DIR/energy-data/carbon_intensity.csv when `covey energy refresh-data` wrote
    one, else the copy shipped with covey (Ember via Our World in Data, latest year per country).
    """
    es = settings.energy if isinstance(settings, Settings) else (settings or EnergySettings())
    if data_dir is None and isinstance(settings, Settings):
        data_dir = settings.data_dir
    if es.carbon_g_per_kwh is not None:
        return CarbonIntensity(g_per_kwh=es.carbon_g_per_kwh, source="user setting (COVEY_ENERGY__CARBON_G_PER_KWH)")
    if es.region:
        row = tables.find_carbon(es.region, data_dir)
        if row is None:
            codes = sorted(c for c in tables.carbon_table(data_dir) if c != tables.WORLD)
            raise ConfigError(f"no carbon intensity for region {es.region!r} in {tables.table_path(tables.CARBON_FILE, data_dir)} "
                              f"({len(codes)} countries by ISO 3166 alpha-3 code or name, e.g. {', '.join(codes[:6])}); "
                              "set COVEY_ENERGY__CARBON_G_PER_KWH to your grid's value instead")
        return CarbonIntensity(g_per_kwh=row.g_co2e_per_kwh, source=f"{row.source}:{row.code}:{row.year}")
    row = tables.carbon_table(data_dir)[tables.WORLD]
    return CarbonIntensity(g_per_kwh=row.g_co2e_per_kwh,
                           source=f"{row.source}:{tables.WORLD}:{row.year} (no region set: COVEY_ENERGY__REGION)")
