"""Battery policy: a node on battery below a charge level stops taking heavy work and says why."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from covey.types import Battery


class BatteryDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    accept_heavy: bool
    reason: str = ""
    """For the announcement, e.g. 'on battery at 22 % (< 30 %): light work only'."""


class BatteryPolicy:
    def __init__(self, min_percent: float = 30.0) -> None:
        if not 0 <= min_percent <= 100:
            raise ValueError("min_percent must be between 0 and 100")
        self.min_percent = min_percent

    def decide(self, battery: Battery) -> BatteryDecision:
        if not battery.present or not battery.on_battery:
            return BatteryDecision(accept_heavy=True)
        if battery.percent < self.min_percent:
            return BatteryDecision(accept_heavy=False, reason=(
                f"on battery at {battery.percent:.0f} % (< {self.min_percent:.0f} %): light work only"))
        return BatteryDecision(accept_heavy=True, reason=f"on battery at {battery.percent:.0f} %")
