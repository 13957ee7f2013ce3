"""Energy: sensors, estimators, per-request attribution and the per-answer ledger."""

from covey.energy.meter import CpuTimeEstimator, EnergyMeter, EnergyWindow

__all__ = ["CpuTimeEstimator", "EnergyMeter", "EnergyWindow"]
