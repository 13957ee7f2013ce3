"""The maintained tables (CodeCarbon CPUs, Ember/OWID carbon), their refresh, and ranges end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from covey.energy import tables
from covey.energy.carbon import resolve_carbon
from covey.energy.cli import app
from covey.energy.estimator import (
    LOAD_X_TDP_HIGH,
    LOAD_X_TDP_LOW,
    MachineFacts,
    choose_cpu_model,
)
from covey.energy.refresh import UPSTREAM, refresh_data
from covey.errors import ConfigError, EnergyDataError
from covey.settings import EnergySettings, Settings
from covey.types import Energy, EnergyComponent, EnergyMethod
from covey.wire import energy_from_pb, energy_to_pb

from .test_detect import build

CPU_CSV = "Name,TDP\n" + "".join(f"Test CPU {i},{10 + i % 90}\n" for i in range(120)) + \
    "AMD EPYC 7763,300\nAMD Phenom II X4 945 (125W),125\nAMD Phenom II X4 945 (95W),95\n"
CARBON_CSV = "Entity,Code,Year,Carbon intensity of electricity - gCO2/kWh\n" + "".join(
    f"Country {i},C{i:02d},{y},{100 + i}\n" for i in range(25) for y in (2023, 2024)) + \
    "France,FRA,2023,60\nFrance,FRA,2025,40.5\nEurope,,2025,280\nWorld,OWID_WRL,2025,470\n"


def upstream_dir(tmp_path: Path, cpu: str = CPU_CSV, carbon: str = CARBON_CSV) -> Path:
    d = tmp_path / "upstream"
    d.mkdir(exist_ok=True)
    (d / "cpu_power.csv").write_text(cpu)
    (d / "carbon-intensity-electricity.csv").write_text(carbon)  # upstream's own file name
    return d


# -- CPU matching ------------------------------------------------------------------------------------

def test_cpu_matching_is_normalised_whole_word_and_names_the_row() -> None:
    hit = tables.find_cpu("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz")
    assert hit is not None and hit.tdp_watts == 120 and hit.describe() == "row 'Intel Xeon E5-2680 v4' = 120 W"
    assert tables.find_cpu("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz").match == "Intel Core i7-8700K"  # not i7-8700
    assert tables.find_cpu("AMD Ryzen 5 PRO 4650G with Radeon Graphics").tdp_watts == 65
    assert tables.find_cpu("AMD Ryzen 7 5800X3D 8-Core Processor") is None  # 5800X is another chip
    assert tables.find_cpu("AMD EPYC") is None and tables.find_cpu("") is None


def test_cpu_listed_with_several_tdps_takes_the_median_and_says_so() -> None:
    hit = tables.find_cpu("AMD Phenom(tm) II X4 945 Processor")
    assert hit is not None and hit.tdp_watts == 110
    assert "2 rows" in hit.describe() and "95-125 W" in hit.describe()


def test_estimate_source_names_the_matched_row_and_carries_codecarbon_range() -> None:
    model, how = choose_cpu_model(MachineFacts(cpu_model="Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz"))
    assert model.max_watts == pytest.approx(1.02 * 15)
    assert model.source == "tdp-table:codecarbon cpu_power.csv row 'Intel Core i5-8250U' = 15 W"
    assert (model.uncertainty, model.uncertainty_high) == (LOAD_X_TDP_LOW, LOAD_X_TDP_HIGH) == (0.6, 1.9)
    assert "-60%..+190%" in how
    model, how = choose_cpu_model(MachineFacts(cpu_model="Intel(R) Core(TM) i5-8250U"), tdp_override=25)
    assert model.max_watts == pytest.approx(1.02 * 25) and "settings" in how and model.uncertainty_high == 1.9


def test_this_kind_of_vm_gets_per_vcpu_coefficients_with_the_range() -> None:
    model, how = choose_cpu_model(MachineFacts(cpu_model="AMD EPYC", logical_cpus=2, virtual_machine=True))
    assert (model.idle_watts, model.max_watts) == (pytest.approx(1.48), pytest.approx(7.0))
    assert (model.uncertainty, model.uncertainty_high) == (0.6, 1.9) and "not in TDP table" in how


# -- carbon --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", ["FRA", "fr", "France", " france "])
def test_region_by_alpha3_old_two_letter_code_or_name(region: str) -> None:
    c = resolve_carbon(EnergySettings(region=region))
    assert c.source == "ember-owid:FRA:2024" and c.g_per_kwh == pytest.approx(44.179085)


def test_unknown_region_error_names_the_table_and_what_it_accepts() -> None:
    with pytest.raises(ConfigError, match=r"no carbon intensity for region 'Atlantis' in .*carbon_intensity.csv"
                                          r".*alpha-3 code or name.*CARBON_G_PER_KWH"):
        resolve_carbon(EnergySettings(region="Atlantis"))


def test_shipped_carbon_table_is_latest_year_per_country() -> None:
    table = tables.carbon_table()
    assert len(table) > 200 and table[tables.WORLD].year == 2024
    assert table["DEU"].country == "Germany" and table["DEU"].year == 2024
    assert all(r.code and r.year >= 2009 for r in table.values())


# -- refresh -------------------------------------------------------------------------------------------

def test_refresh_from_local_copies_takes_precedence_over_the_shipped_tables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    written = refresh_data(data, str(upstream_dir(tmp_path)), clock=lambda: 1.0e9)
    assert [(t.name, t.rows) for t in written] == [("cpu_power.csv", 123), ("carbon_intensity.csv", 27)]
    assert (data / "energy-data" / "SOURCES.json").read_text().count("sha256_of_input") == 2
    settings = Settings(data_dir=data, energy=EnergySettings(region="FR"))
    c = resolve_carbon(settings)
    assert c.source == "ember-owid:FRA:2025" and c.g_per_kwh == pytest.approx(40.5)  # latest year kept
    assert resolve_carbon(Settings(data_dir=data)).g_per_kwh == pytest.approx(470.0)
    assert tables.find_cpu("AMD EPYC 7763 64-Core Processor", data).tdp_watts == 300
    assert tables.find_cpu("AMD EPYC 7763 64-Core Processor").tdp_watts == 280  # shipped copy untouched
    assert "Europe" not in (data / "energy-data" / "carbon_intensity.csv").read_text()  # aggregates dropped
    # the user's value still comes first
    assert resolve_carbon(Settings(data_dir=data, energy=EnergySettings(carbon_g_per_kwh=5.0))).g_per_kwh == 5.0


def test_refresh_validates_both_tables_before_writing_either(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = upstream_dir(tmp_path, carbon="Entity,Code,Year,Carbon intensity of electricity - gCO2/kWh\n"
                                        "France,FRA,2024,lots\n")
    with pytest.raises(EnergyDataError, match="line 2: expected columns"):
        refresh_data(data, str(bad))
    assert not (data / "energy-data").exists()
    few = upstream_dir(tmp_path, cpu="Name,TDP\nSome CPU,65\n")
    with pytest.raises(EnergyDataError, match="only 1 CPU rows"):
        refresh_data(data, str(few))
    with pytest.raises(EnergyDataError, match="implausible CPU row"):
        refresh_data(data, str(upstream_dir(tmp_path, cpu="Name,TDP\nHot CPU,5000\n")))
    with pytest.raises(EnergyDataError, match="neither a directory nor an http"):
        refresh_data(data, str(tmp_path / "missing"))
    assert not (data / "energy-data").exists()


def test_refresh_downloads_upstream_urls_by_default_and_base_urls_with_fallback_names(tmp_path: Path) -> None:
    seen: list[str] = []
    served = {UPSTREAM["cpu_power.csv"]: CPU_CSV, UPSTREAM["carbon_intensity.csv"]: CARBON_CSV,
              "https://mirror.example/e/cpu_power.csv": CPU_CSV,
              "https://mirror.example/e/carbon-intensity-electricity.csv": CARBON_CSV}

    def fetch(url: str) -> str:
        seen.append(url)
        if url not in served:
            raise EnergyDataError(f"cannot download {url}: 404")
        return served[url]

    refresh_data(tmp_path / "a", fetch=fetch)
    assert seen == [UPSTREAM["cpu_power.csv"], UPSTREAM["carbon_intensity.csv"]]
    seen.clear()
    written = refresh_data(tmp_path / "b", "https://mirror.example/e/", fetch=fetch)
    assert seen == ["https://mirror.example/e/cpu_power.csv", "https://mirror.example/e/carbon_intensity.csv",
                    "https://mirror.example/e/carbon-intensity-electricity.csv"]
    assert written[1].origin == "https://mirror.example/e/carbon-intensity-electricity.csv"


def test_cli_refresh_data_from_a_directory_and_its_error(tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["refresh-data", "--from", str(upstream_dir(tmp_path)),
                                  "--data-dir", str(tmp_path / "data")])
    assert ok.exit_code == 0, ok.output
    assert "cpu_power.csv: 123 rows" in ok.output and "carbon_intensity.csv: 27 rows" in ok.output
    bad = CliRunner().invoke(app, ["refresh-data", "--from", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "neither a directory" in bad.output


# -- ranges --------------------------------------------------------------------------------------------

def test_component_and_total_ranges_add_up() -> None:
    est = EnergyComponent(name="cpu", joules=10.0, method=EnergyMethod.ESTIMATED, uncertainty=0.6,
                          uncertainty_high=1.9)
    ram = EnergyComponent(name="ram", joules=2.0, method=EnergyMethod.ESTIMATED, uncertainty=0.5)
    rapl = EnergyComponent(name="cpu", joules=5.0, method=EnergyMethod.MEASURED, uncertainty=0.05)
    assert (est.joules_low, est.joules_high) == (pytest.approx(4.0), pytest.approx(29.0))
    total = Energy.of([est, ram]) + Energy.of([rapl])
    assert total.joules_low == pytest.approx(4.0 + 1.0 + 4.75)
    assert total.joules_high == pytest.approx(29.0 + 3.0 + 5.25)
    assert Energy(joules=3.0).joules_low == Energy(joules=3.0).joules_high == 3.0  # no components: no range known


def test_asymmetric_range_crosses_the_wire() -> None:
    e = Energy.of([EnergyComponent(name="cpu", joules=1.0, method=EnergyMethod.ESTIMATED, uncertainty=0.6,
                                   uncertainty_high=1.9),
                   EnergyComponent(name="gpu", joules=1.0, method=EnergyMethod.MEASURED, uncertainty=0.05)])
    back = energy_from_pb(energy_to_pb(e))
    assert [c.uncertainty_high for c in back.components] == [1.9, None]
    assert back.joules_high == pytest.approx(e.joules_high)


def test_estimate_only_meter_puts_the_range_on_its_components(tmp_path: Path) -> None:
    meter = build(tmp_path)
    window = meter.open("answer")
    meter.clock.t = 2.0  # type: ignore[attr-defined]
    energy = window.close()
    cpu = next(c for c in energy.components if c.name == "cpu")
    assert (cpu.uncertainty, cpu.uncertainty_high) == (0.6, 1.9) and cpu.source.startswith("per-vcpu:")
    assert energy.joules_high == pytest.approx(sum(c.joules_high for c in energy.components))
