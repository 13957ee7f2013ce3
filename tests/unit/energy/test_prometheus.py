"""Prometheus exposition: parsed back by prometheus_client's own parser, served on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from covey.energy.prometheus import MetricsServer, NodeEnergyStats, render_metrics
from covey.errors import PortInUse
from covey.types import Battery, Energy, EnergyComponent, EnergyMethod


def e(cpu: float, ram: float) -> Energy:
    return Energy.of([
        EnergyComponent(name="cpu", joules=cpu, marginal_joules=cpu / 2, method=EnergyMethod.ESTIMATED),
        EnergyComponent(name="ram", joules=ram, marginal_joules=ram, method=EnergyMethod.ESTIMATED)])


def stats() -> NodeEnergyStats:
    s = NodeEnergyStats(smoothing=0.5)
    s.observe("smollm2", e(10.0, 1.0), 100)
    s.observe("smollm2", e(20.0, 2.0), 100)
    s.observe("gemma", e(5.0, 0.0), 0)
    return s


def test_joules_per_token_is_smoothed_per_model() -> None:
    s = stats()
    assert s.joules_per_token("smollm2") == pytest.approx(0.5 * 0.11 + 0.5 * 0.22)
    assert s.joules_per_token("gemma") == 0.0
    assert s.joules_per_token() == pytest.approx(s.joules_per_token("smollm2"))


def test_render_parses_with_prometheus_client() -> None:
    text = render_metrics(stats(), node='den "pc"', power_watts=4.5,
                          battery=Battery(present=True, on_battery=True, percent=80), meter="estimated: per-vcpu")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    joules = {(s.labels["component"], s.labels["method"]): s.value for s in fams["covey_energy_joules"].samples}
    assert joules == {("cpu", "estimated"): 35.0, ("ram", "estimated"): 3.0}
    assert fams["covey_energy_joules"].type == "counter"
    tokens = {s.labels["model"]: s.value for s in fams["covey_tokens_generated"].samples}
    assert tokens == {"smollm2": 200.0, "gemma": 0.0}
    assert fams["covey_power_watts"].samples[0].value == 4.5
    assert fams["covey_power_watts"].samples[0].labels["node"] == 'den "pc"'
    assert fams["covey_on_battery"].samples[0].value == 1.0
    assert fams["covey_energy_meter_info"].samples[0].labels["meter"] == "estimated: per-vcpu"


def test_server_binds_loopback_and_serves_metrics() -> None:
    s = stats()
    server = MetricsServer(lambda: render_metrics(s, node="n1"))
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        r = httpx.get(server.url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "covey_requests_total" in r.text
        assert httpx.get(server.url.replace("/metrics", "/nope")).status_code == 404
        with pytest.raises(PortInUse, match="cannot serve metrics"):
            MetricsServer(lambda: "", port=server.port)
    finally:
        server.close()


def test_label_values_are_short_identifiers_never_paragraphs() -> None:
    paragraph = ("no power sensor on this machine: the figures are an estimate; no RAPL: /sys/class/powercap "
                 "does not exist (not Linux, or a VM without powercap);\nestimated: CPU 'AMD EPYC' ...")
    text = render_metrics(stats(), node="den-pc", meter=paragraph, method="estimated")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    labels = fams["covey_energy_meter_info"].samples[0].labels
    assert len(labels["meter"]) <= 64 and "\n" not in labels["meter"] and labels["method"] == "estimated"
    for fam in fams.values():
        for sample in fam.samples:
            assert all(len(v) <= 64 for v in sample.labels.values())
