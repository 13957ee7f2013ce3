"""Grid carbon intensity: a value you set, else your region from the shipped table, else the world."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from covey.energy import tables
from covey.errors import ConfigError
from covey.settings import EnergySettings, Settings

J_PER_KWH = 3.6e6


class CarbonIntensity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    g_per_kwh: float = Field(ge=0.0, description="grams CO2e per kWh of electricity")
    source: str = Field(description="where the figure comes from, e.g. 'ember:FR:2023'")

    def grams(self, joules: float, pue: float = 1.0) -> float:
        """gCO2e for device energy in joules, scaled by the room's PUE."""
        return joules * pue / J_PER_KWH * self.g_per_kwh


def resolve_carbon(settings: Settings | EnergySettings | None = None) -> CarbonIntensity:
    """User value > region table > world average; the source says which one was used."""
    es = settings.energy if isinstance(settings, Settings) else (settings or EnergySettings())
    if es.carbon_g_per_kwh is not None:
        return CarbonIntensity(g_per_kwh=es.carbon_g_per_kwh, source="user setting (COVEY_ENERGY__CARBON_G_PER_KWH)")
    table = tables.carbon_table()
    if es.region:
        row = table.get(es.region.strip().upper())
        if row is None:
            codes = ", ".join(sorted(c for c in table if c != "WORLD"))
            raise ConfigError(f"no carbon intensity for region {es.region!r} in the shipped table (it has {codes}); "
                              "set COVEY_ENERGY__CARBON_G_PER_KWH to your grid's value instead")
        return CarbonIntensity(g_per_kwh=row.g_co2e_per_kwh, source=f"{row.source}:{row.code}:{row.year}")
    row = table["WORLD"]
    return CarbonIntensity(g_per_kwh=row.g_co2e_per_kwh,
                           source=f"{row.source}:WORLD:{row.year} (no region set: COVEY_ENERGY__REGION)")
