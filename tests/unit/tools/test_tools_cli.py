"""`covey tools`: list, call by hand, describe the sandbox."""

from typer.testing import CliRunner

from covey.cli import app


def invoke(*args):
    return CliRunner().invoke(app, ["tools", *args])


def test_ls_lists_the_shipped_tools():
    result = invoke("ls")
    assert result.exit_code == 0
    for name in ("calculator", "convert_units", "search_documents", "python"):
        assert name in result.output


def test_call_prints_the_exact_result_or_a_clear_error():
    ok = invoke("call", "calculator", '{"expression": "17 times 23"}')
    assert ok.exit_code == 0 and "17 times 23 = 391" in ok.output and "sympy" in ok.output
    bad = invoke("call", "calculator", '{"expression": "10/0"}')
    assert bad.exit_code == 1 and "division by zero" in bad.output
    junk = invoke("call", "calculator", "not json")
    assert junk.exit_code == 2 and "not JSON" in junk.output


def test_searching_without_a_collection_says_how_to_add_one():
    result = invoke("call", "search_documents", '{"query": "kettle"}')
    assert result.exit_code == 1 and "covey rag add" in result.output
