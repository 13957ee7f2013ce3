"""Tools are data plus a function; calls validate arguments and never raise or show a traceback."""

import sys
import textwrap

import pytest
from pydantic import BaseModel, ValidationError

from covey.errors import ConfigError, ToolError, UnknownTool
from covey.tools import Tool, ToolCall, ToolOutput, ToolRegistry, known_tool_names, load_plugins
from covey.tools.registry import plugin_entry_points
from covey.tools.types import ToolSpec


class EchoArgs(BaseModel):
    text: str
    times: int = 1


def echo_tool(seen=None):
    def run(args):
        if seen is not None:
            seen.append(args)
        if args.text == "refuse":
            raise ToolError("I will not echo that")
        if args.text == "crash":
            raise RuntimeError("boom")
        return ToolOutput(args.text * args.times, f"echo: {args.text * args.times}", "echo")

    ticks = iter([10.0, 10.25, 20.0, 20.5, 30.0, 30.1, 40.0, 40.1])
    return Tool("echo", "Repeat text.", EchoArgs, run, clock=lambda: next(ticks))


def test_spec_is_frozen_data_with_a_json_schema():
    tool = echo_tool()
    assert tool.spec == ToolSpec(name="echo", description="Repeat text.", parameters=tool.spec.parameters)
    assert tool.spec.parameters["type"] == "object"
    assert tool.spec.parameters["required"] == ["text"]
    assert set(tool.spec.parameters["properties"]) == {"text", "times"}
    with pytest.raises(ValidationError):
        tool.spec.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ToolSpec(name="Bad Name", description="x", parameters={})


def test_call_returns_a_typed_result_with_seconds():
    seen = []
    result = echo_tool(seen)({"text": "ab", "times": 2})
    assert result.ok and result.value == "abab" and result.text == "echo: abab" and result.method == "echo"
    assert result.seconds == pytest.approx(0.25)
    assert seen == [EchoArgs(text="ab", times=2)]
    assert result.for_model() == "echo: abab"


def test_bad_arguments_tool_errors_and_crashes_are_one_line_errors():
    tool = echo_tool()
    bad = tool({"times": "many"})
    assert not bad.ok and bad.error.startswith("bad arguments for echo:")
    assert "'text': Field required" in bad.error and "'times'" in bad.error
    refused = tool(text="refuse")
    assert not refused.ok and refused.error == "I will not echo that"
    crashed = tool(text="crash")
    assert not crashed.ok and crashed.error == "echo failed: RuntimeError: boom"
    assert "Traceback" not in crashed.error and crashed.for_model() == "error: echo failed: RuntimeError: boom"


def test_registry_lookup_specs_and_calls():
    registry = ToolRegistry([echo_tool()])
    assert registry.names() == ("echo",) and "echo" in registry and len(registry) == 1
    assert registry.specs(["echo"])[0].name == "echo"
    assert registry.call(ToolCall(name="echo", arguments={"text": "hi"})).value == "hi"
    typo = registry.call(ToolCall(name="ecko", arguments={}))
    assert not typo.ok and "no tool named 'ecko'; use one of echo" == typo.error
    with pytest.raises(UnknownTool, match="no tool named 'ecko'"):
        registry.get("ecko")
    with pytest.raises(UnknownTool, match="agent 'x' names unknown tool 'ecko'"):
        registry.check(["echo", "ecko"], owner="agent 'x'")


def test_a_later_tool_replaces_one_of_the_same_name():
    class Other(BaseModel):
        pass

    replacement = Tool("echo", "Say nothing.", Other, lambda args: ToolOutput(None, "nothing"))
    registry = ToolRegistry([echo_tool()]).with_tools([replacement])
    assert registry.get("echo").spec.description == "Say nothing."


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A real installed distribution (dist-info with entry_points.txt) providing a 'shout' tool."""
    (tmp_path / "covey_shout.py").write_text(textwrap.dedent('''
        from pydantic import BaseModel
        from covey.tools import Tool, ToolOutput

        class ShoutArgs(BaseModel):
            text: str

        def shout_tool():
            return Tool("shout", "Upper-case the text.", ShoutArgs, lambda a: ToolOutput(a.text.upper(), a.text.upper()))

        def not_a_tool():
            return 42
    '''))
    info = tmp_path / "covey_shout-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: covey-shout\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[covey.tools]\nshout = covey_shout:shout_tool\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    known_tool_names.cache_clear()
    yield tmp_path
    known_tool_names.cache_clear()
    sys.modules.pop("covey_shout", None)


def test_entry_point_tools_load_and_validate(plugin_dir):
    assert "shout" in [p.name for p in plugin_entry_points()]
    assert "shout" in known_tool_names()
    tools = {t.name: t for t in load_plugins()}
    assert tools["shout"]({"text": "hey"}).value == "HEY"


def test_a_broken_entry_point_is_a_config_error_naming_it(plugin_dir):
    from importlib.metadata import EntryPoint

    wrong = EntryPoint(name="shout", value="covey_shout:not_a_tool", group="covey.tools")
    with pytest.raises(ConfigError, match="gave int, not a covey.tools.Tool"):
        load_plugins([wrong])
    missing = EntryPoint(name="gone", value="covey_no_such_module:tool", group="covey.tools")
    with pytest.raises(ConfigError, match="cannot load tool entry point 'gone"):
        load_plugins([missing])
    misnamed = EntryPoint(name="yell", value="covey_shout:shout_tool", group="covey.tools")
    with pytest.raises(ConfigError, match="is named 'shout'"):
        load_plugins([misnamed])


def test_a_missing_library_says_which_install_brings_it():
    from covey.tools.registry import require

    with pytest.raises(ToolError, match=r"needs covey-no-such-lib.*pip install 'covey\[orchestrator\]'"):
        require("covey_no_such_lib", "covey-no-such-lib")
    assert require("json").dumps([1]) == "[1]"
