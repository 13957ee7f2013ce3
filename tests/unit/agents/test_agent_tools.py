"""Agents name the tools they may use; names are checked against shipped tools and entry points."""

import pytest
from pydantic import ValidationError

from covey.agents import AgentSpec, default_roster, load_agents
from covey.errors import ConfigError, UnknownTool
from covey.tools import BUILTIN_TOOLS, ToolRegistry, default_registry

SMOL = "smollm2-135m-instruct-q4_1"


def spec(**kw):
    base = dict(name="helper", routes=("chat",), system_prompt="Be helpful.", ladder=(SMOL,))
    return AgentSpec(**{**base, **kw})


def test_agents_have_no_tools_unless_they_name_them():
    assert spec().tools == ()
    assert spec(tools=["calculator", "python"]).tools == ("calculator", "python")


def test_unknown_and_repeated_tools_are_refused():
    with pytest.raises(ValidationError, match="unknown tool.*'abacus'.*covey.tools"):
        spec(tools=("calculator", "abacus"))
    with pytest.raises(ValidationError, match="appears twice"):
        spec(tools=("python", "python"))


def test_shipped_specialists_name_shipped_tools():
    roster = default_roster()
    assert roster.for_route("math").tools == ("calculator", "solve", "percent", "convert_units", "weekday",
                                             "date_difference", "date_add")
    assert roster.for_route("code").tools == ("python",)
    assert "search_documents" in roster.for_route("knowledge").tools
    roster.check_tools(default_registry(plugins=False))
    for agent in roster:
        assert set(agent.tools) <= set(BUILTIN_TOOLS)


def test_check_tools_against_the_registry_the_agent_runs_with():
    with pytest.raises(UnknownTool, match="agent 'helper' names unknown tool 'python'"):
        spec(tools=("python",)).check_tools(ToolRegistry([]))


def test_agents_toml_names_tools(tmp_path):
    path = tmp_path / "agents.toml"
    path.write_text('[[agents]]\nname = "quant"\nroutes = ["math"]\nsystem_prompt = "Use the calculator."\n'
                    f'ladder = ["{SMOL}"]\ntools = ["calculator", "convert_units"]\n')
    (agent,) = load_agents(path)
    assert agent.tools == ("calculator", "convert_units")
    path.write_text('[[agents]]\nname = "quant"\nroutes = ["math"]\nsystem_prompt = "x"\n'
                    f'ladder = ["{SMOL}"]\ntools = ["slide_rule"]\n')
    with pytest.raises(ConfigError, match=r"agents\[0\] \('quant'\): field 'tools'.*unknown tool.*'slide_rule'"):
        load_agents(path)
