"""Energy: sensors, estimators, per-request attribution and the per-answer ledger.

Only light modules are imported here (a device node imports this package); the report's plot
imports matplotlib lazily.
"""

from covey.energy.attribution import AttributingMeter, MeterWindow
from covey.energy.carbon import CarbonIntensity, resolve_carbon
from covey.energy.detect import DetectedMeter, detect_meter
from covey.energy.ledger import AnswerRecord, AttemptRecord, Ledger
from covey.energy.meter import CpuTimeEstimator, EnergyMeter, EnergyWindow
from covey.energy.node import NodeEnergy
from covey.energy.policy import BatteryDecision, BatteryPolicy
from covey.energy.powercap import PowerCapController
from covey.energy.prometheus import MetricsServer, NodeEnergyStats, render_metrics

__all__ = [
    "AnswerRecord", "AttemptRecord", "AttributingMeter", "BatteryDecision", "BatteryPolicy", "CarbonIntensity",
    "CpuTimeEstimator", "DetectedMeter", "EnergyMeter", "EnergyWindow", "Ledger", "MeterWindow", "MetricsServer",
    "NodeEnergy", "NodeEnergyStats", "PowerCapController", "detect_meter", "render_metrics", "resolve_carbon",
]
