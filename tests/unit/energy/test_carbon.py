"""Carbon intensity resolution: user value > region table > world, the source always named."""

from __future__ import annotations

import pytest

from covey.energy.carbon import resolve_carbon
from covey.errors import ConfigError
from covey.settings import EnergySettings, Settings


def test_user_value_wins() -> None:
    c = resolve_carbon(EnergySettings(carbon_g_per_kwh=12.5, region="PL"))
    assert c.g_per_kwh == 12.5 and "user setting" in c.source


def test_region_from_table_names_source_and_year() -> None:
    # The table is now Ember via Our World in Data (ISO alpha-3, latest year); 'fr' still works.
    c = resolve_carbon(EnergySettings(region="fr"))
    assert c.source == "ember-owid:FRA:2024" and 20 < c.g_per_kwh < 120


def test_world_average_when_nothing_set_says_how_to_set_region() -> None:
    c = resolve_carbon(Settings())
    assert c.source.startswith("ember-owid:WORLD:2024") and "COVEY_ENERGY__REGION" in c.source


def test_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no carbon intensity for region 'XX'.*CARBON_G_PER_KWH"):
        resolve_carbon(EnergySettings(region="XX"))


def test_grams_from_joules_with_pue() -> None:
    c = resolve_carbon(EnergySettings(carbon_g_per_kwh=360.0))
    assert c.grams(3.6e6) == pytest.approx(360.0)
    assert c.grams(3600.0, pue=1.5) == pytest.approx(0.54)
