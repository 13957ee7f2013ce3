"""Tuned thresholds merged into the user's agents.toml: nothing else in the file is lost."""

from __future__ import annotations

import pytest

from covey.agents import SPECIALISTS, default_roster, load_agents
from covey.agents.overrides import merged_text, set_acceptance
from covey.errors import ConfigError

USER_FILE = """\
# my agents: keep this comment
[[agents]]
name = "sql"          # portable SQL
routes = ["code"]
system_prompt = "You write SQL."
ladder = ["smollm2-135m-instruct-q4_1"]
max_tokens = 400
[agents.sampling]
temperature = 0.1
[agents.accept]
min_mean_logprob = -0.8

[[agents]]
name = "poet"
routes = ["writing"]
system_prompt = "You write poems."
ladder = ["smollm2-135m-instruct-q4_1"]
"""


def test_merge_updates_one_agent_adds_a_shipped_one_and_keeps_the_rest(tmp_path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(USER_FILE)
    text = set_acceptance(path, {"sql": (-0.5, -7.0), "mathematician": (-0.3, -4.0)}, validate=load_agents)
    assert "# my agents: keep this comment" in text and "# portable SQL" in text
    agents = {a.name: a for a in load_agents(path)}
    assert set(agents) == {"sql", "poet", "mathematician"}
    assert (agents["sql"].accept.min_mean_logprob, agents["sql"].accept.min_token_logprob) == (-0.5, -7.0)
    assert agents["sql"].max_tokens == 400 and agents["sql"].sampling.temperature == 0.1
    assert agents["poet"].system_prompt == "You write poems."
    shipped = next(a for a in SPECIALISTS if a.name == "mathematician")
    tuned = default_roster(path).get("mathematician")
    assert (tuned.accept.min_mean_logprob, tuned.accept.min_token_logprob) == (-0.3, -4.0)
    assert tuned.ladder == shipped.ladder and tuned.system_prompt == shipped.system_prompt
    assert tuned.tools == shipped.tools
    # Tuning again edits the same table: no second 'mathematician' appears.
    set_acceptance(path, {"mathematician": (-0.2, -3.0)})
    assert path.read_text().count('name = "mathematician"') == 1
    assert default_roster(path).get("mathematician").accept.min_mean_logprob == -0.2


def test_merge_into_a_missing_file_and_bad_files_are_refused_without_writing(tmp_path) -> None:
    path = tmp_path / "new" / "agents.toml"
    set_acceptance(path, {"translator": (-0.7, -9.0)})
    assert default_roster(path).get("translator").accept.min_mean_logprob == -0.7
    with pytest.raises(ConfigError, match="not valid TOML"):
        merged_text("[[agents]\nname=", {"x": (-1.0, -9.0)})
    bad = tmp_path / "bad.toml"
    bad.write_text('agents = "nope"\n')
    with pytest.raises(ConfigError, match="array of tables"):
        set_acceptance(bad, {"x": (-1.0, -9.0)})
    assert bad.read_text() == 'agents = "nope"\n'
    # A change the roster would refuse (a threshold above 0) leaves the old file in place.
    with pytest.raises(ConfigError):
        set_acceptance(path, {"translator": (0.5, -9.0)}, validate=load_agents)
    assert default_roster(path).get("translator").accept.min_mean_logprob == -0.7
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_partial_table_for_an_unknown_agent_is_still_an_error(tmp_path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text('[[agents]]\nname = "nobody"\n[agents.accept]\nmin_mean_logprob = -0.5\n')
    with pytest.raises(ConfigError, match="field 'routes'"):
        load_agents(path)
