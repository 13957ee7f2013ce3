"""Agents as data: specs, the shipped specialists, user agents from TOML, and answer checkers."""

from covey.agents.checkers import CHECKERS, CheckResult, run_check
from covey.agents.roster import AgentRoster, LadderStatus, RungStatus, default_roster, ladder_status, load_agents
from covey.agents.spec import Acceptance, AgentSpec
from covey.agents.specialists import SPECIALISTS

__all__ = [
    "CHECKERS", "Acceptance", "AgentRoster", "AgentSpec", "CheckResult", "LadderStatus", "RungStatus", "SPECIALISTS",
    "default_roster", "ladder_status", "load_agents", "run_check",
]
