"""The shipped tools through the registry, as a model would call them."""

import datetime as dt

import pytest

from covey.errors import BadRequest
from covey.rag.types import Passage, Position
from covey.tools import BUILTIN_TOOLS, ToolCall, default_registry
from covey.tools.sandbox import SandboxResult


class RecordingSearcher:
    def __init__(self, passages=(), error=None):
        self.passages, self.error, self.seen = list(passages), error, []

    def search(self, query, k=5):
        self.seen.append((query, k))
        if self.error:
            raise self.error
        return self.passages[:k]


class RecordingSandbox:
    def __init__(self, result):
        self.result, self.seen = result, []

    def run(self, code, *, files=None):
        self.seen.append(code)
        return self.result


def call(registry, name, **arguments):
    return registry.call(ToolCall(name=name, arguments=arguments))


@pytest.fixture
def registry():
    return default_registry(today=lambda: dt.date(2026, 12, 1), plugins=False)


def test_all_shipped_tools_are_registered(registry):
    assert registry.names() == BUILTIN_TOOLS
    for spec in registry.specs():
        assert spec.description and spec.parameters["type"] == "object"


def test_maths_tools(registry):
    r = call(registry, "calculator", expression="17 times 23")
    assert (r.ok, r.value, r.text, r.method) == (True, 391, "17 times 23 = 391", "sympy")
    assert call(registry, "calculator", expression="1/3").value == pytest.approx(1 / 3)
    assert call(registry, "solve", equation="3x + 7 = 28").text == "x = 7"
    assert call(registry, "solve", equation="x^2 + 1 = 0").value == ["-I", "I"]
    assert call(registry, "percent", operation="of", a=15, b=240).text == "15% of 240 = 36"
    assert call(registry, "percent", operation="ratio", a=36, b=240).text == "36 is 15% of 240"
    bad = call(registry, "calculator", expression="__import__('os')")
    assert not bad.ok and "Traceback" not in bad.error


def test_unit_and_date_tools(registry):
    r = call(registry, "convert_units", quantity="3.5 hours", to="minutes")
    assert (r.value, r.text, r.method) == (210, "3.5 hours = 210 minutes", "pint")
    assert not call(registry, "convert_units", quantity="5 kg", to="m").ok
    assert call(registry, "weekday", date="2024-07-04").value == "Thursday"
    assert call(registry, "date_difference", start="today", end="2026-12-25").value == 24
    assert call(registry, "date_add", date="today", duration="3 weeks 2 days").text == \
        "2026-12-01 + 3 weeks 2 days = 2026-12-24 (Thursday)"


def test_search_documents_wraps_a_store():
    passage = Passage(text="The kettle holds 1.7 litres.", score=0.81234, source="/docs/kettle.md",
                      position=Position(line_start=3, line_end=4), chunk_id=7)
    searcher = RecordingSearcher([passage])
    registry = default_registry(searcher=searcher, plugins=False)
    r = call(registry, "search_documents", query="kettle size", k=2)
    assert r.ok and searcher.seen == [("kettle size", 2)]
    assert r.value == [{"text": "The kettle holds 1.7 litres.", "source": "/docs/kettle.md:3-4", "score": 0.8123}]
    assert r.text == "[1] /docs/kettle.md:3-4\nThe kettle holds 1.7 litres."
    assert call(default_registry(searcher=RecordingSearcher(), plugins=False), "search_documents", query="x").text \
        == "no passage matches"


def test_search_documents_errors_are_tool_errors():
    failing = default_registry(searcher=RecordingSearcher(error=BadRequest("the search query is empty")), plugins=False)
    assert call(failing, "search_documents", query="x").error == "the search query is empty"
    none = call(default_registry(plugins=False), "search_documents", query="x")
    assert not none.ok and "no documents are indexed" in none.error
    opened = []
    lazy = default_registry(searcher=lambda: opened.append(1) or RecordingSearcher(), plugins=False)
    call(lazy, "search_documents", query="a")
    call(lazy, "search_documents", query="b")
    assert opened == [1]


def test_python_tool_reports_the_sandbox_result():
    ok = RecordingSandbox(SandboxResult(ok=True, outcome="ok", stdout="45\n"))
    r = call(default_registry(sandbox=ok, plugins=False), "python", code="print(sum(range(10)))")
    assert (r.ok, r.value, r.text, r.method) == (True, "45\n", "45", "sandbox")
    assert ok.seen == ["print(sum(range(10)))"]
    failed = RecordingSandbox(SandboxResult(ok=False, outcome="error", stdout="partial\n",
                                            error="NameError: name 'math' is not defined (line 3)"))
    r = call(default_registry(sandbox=failed, plugins=False), "python", code="print(math.pi)")
    assert not r.ok and r.error == "NameError: name 'math' is not defined (line 3) (it printed: partial)"
