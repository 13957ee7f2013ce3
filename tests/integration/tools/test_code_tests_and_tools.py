"""Real processes: code plus asserts/doctests in the sandbox, the python tool, and search on a real FAISS store."""

from __future__ import annotations

import pytest

from covey.tools import Sandbox, SandboxLimits, ToolCall, default_registry, run_code_tests

PRIME_WITHOUT_IMPORT = '''def is_prime(n):
    if n < 2:
        return False
    for i in range(2, int(math.sqrt(n)) + 1):
        if n % i == 0:
            return False
    return True
'''
TESTS = "assert is_prime(7)\nassert not is_prime(9)\nassert is_prime(2)\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(wall_seconds=20.0))


def test_the_coders_prime_function_without_its_import_fails(sandbox):
    report = run_code_tests(sandbox, PRIME_WITHOUT_IMPORT, TESTS)
    assert not report.passed and report.tests_failed == 3 and report.tests_passed == 0
    assert report.error == "assert is_prime(7) (line 1) failed: NameError: name 'math' is not defined"


def test_the_fixed_function_passes_and_a_wrong_one_names_the_failing_assert(sandbox):
    good = run_code_tests(sandbox, "import math\n" + PRIME_WITHOUT_IMPORT, TESTS)
    assert good.passed and good.tests_passed == 3 and good.error == ""
    wrong = run_code_tests(sandbox, "def is_prime(n):\n    return n % 2 == 1\n", TESTS)
    assert not wrong.passed and wrong.tests_passed == 1 and wrong.tests_failed == 2
    assert wrong.error == "assert not is_prime(9) (line 2) failed: AssertionError"


def test_doctests_run(sandbox):
    code = 'def add(a, b):\n    """\n    >>> add(2, 2)\n    4\n    >>> add(1, 1)\n    3\n    """\n    return a + b\n'
    report = run_code_tests(sandbox, code)
    assert not report.passed and report.doctests == 2 and report.tests_passed == 1 and report.tests_failed == 1
    assert "Failed example: | add(1, 1) | Expected: | 3 | Got: | 2" in report.error
    assert run_code_tests(sandbox, code.replace("    3\n", "    2\n")).passed


def test_code_that_does_not_run_or_escapes_fails_clearly(sandbox):
    broken = run_code_tests(sandbox, "def f(:\n    pass\n", "assert f()")
    assert not broken.passed and broken.error.startswith("the code does not run: SyntaxError")
    escaping = run_code_tests(sandbox, "import os\nos.system('true')\n", "assert True")
    assert not escaping.passed and "starting a process (os.system)" in escaping.error
    assert run_code_tests(sandbox, "x = 1", "assert x ==").error.startswith("the tests do not parse")
    assert run_code_tests(sandbox, "x = 1").error == "no tests ran: give asserts or doctests"


def test_python_tool_in_the_real_sandbox(sandbox):
    registry = default_registry(sandbox=sandbox, plugins=False)
    ok = registry.call(ToolCall(name="python", arguments={"code": "import math\nprint(math.comb(10, 3))"}))
    assert ok.ok and ok.text == "120" and ok.method == "sandbox"
    bad = registry.call(ToolCall(name="python", arguments={"code": "print(math.sqrt(2))"}))
    assert not bad.ok and bad.error == "NameError: name 'math' is not defined (line 1)"
    escape = registry.call(ToolCall(name="python", arguments={"code": "import socket\nsocket.socket()"}))
    assert not escape.ok and "network access" in escape.error


class WordHashEmbedder:
    """Words hash to dimensions (texts sharing words are near): fast, so the real FAISS store is the point."""

    name, dim, max_tokens = "word-hash-test", 128, 256

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts):
        import hashlib

        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                out[row, int(hashlib.blake2b(word.encode(), digest_size=4).hexdigest(), 16) % self.dim] += 1.0
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-9)
        return out


def test_search_documents_over_a_real_store(tmp_path):
    from covey.rag import Store

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kettle.md").write_text("# Kettle\n\nThe office kettle holds 1.7 litres and boils in three minutes.\n")
    (docs / "bikes.md").write_text("# Bikes\n\nBicycles are stored in the basement behind the blue door.\n")
    with Store(tmp_path / "rag", embedder=WordHashEmbedder()) as store:
        store.add([docs])
        registry = default_registry(searcher=store, plugins=False)
        result = registry.call(ToolCall(name="search_documents",
                                        arguments={"query": "where are bicycles stored?", "k": 1}))
    assert result.ok and result.method == "retrieval"
    assert result.value[0]["source"].startswith(str(docs / "bikes.md"))
    assert "basement" in result.text and result.text.startswith("[1] ")


CLAIMING = '''def reverse_string(s):
    return s[::-1]

# Example usage:
print(reverse_string("Hello World"))  # Output: "HELLO WORLD"
print(len("abc"))  # Output: 3
print([1, 2])  # -> [1, 2]
if __name__ == "__main__":
    word = "xy"
    print(word)  # Output: 7
    print(reverse_string("ab"))  # prints: ab
'''


def test_example_outputs_in_comments_are_checked_against_a_run(sandbox):
    from covey.tools.testing import corrected_code, output_claims

    assert [c.line for c in output_claims(CLAIMING)] == [5, 6, 7, 10, 11]
    report = run_code_tests(sandbox, CLAIMING)
    # The __main__ block does not run on import: a name it assigns cannot be evaluated and is not judged.
    assert report.wrong_claims == ((5, '"HELLO WORLD"', "dlroW olleH"), (11, "ab", "ba"))
    fixed = corrected_code(CLAIMING, report.wrong(CLAIMING))
    assert '# Output: "dlroW olleH"' in fixed and "# prints: ba" in fixed and "# Output: 3" in fixed
    assert run_code_tests(sandbox, fixed).wrong_claims == ()


def test_a_function_that_crashes_on_an_ordinary_input_fails_its_smoke_call(sandbox):
    from covey.tools.testing import smoke_calls

    broken = 'def reverse_string(s):\n    return "".join([reversed(c) for c in s])\n'  # `make demo`'s SmolLM2
    report = run_code_tests(sandbox, broken, smoke_calls(broken))
    assert not report.passed and report.tests_failed == 1
    assert report.error.startswith("reverse_string('hello world') (line 1) failed: TypeError")
    good = 'def reverse_string(s):\n    return s[::-1]\n'
    clean = run_code_tests(sandbox, good, smoke_calls(good))
    assert clean.tests_failed == 0 and clean.error.startswith("no tests ran")  # what it returns is not judged


def test_a_function_that_reads_input_it_was_not_asked_for_fails_its_smoke_call(sandbox):
    from covey.tools.testing import smoke_calls

    code = "def is_prime(n):\n    if n < 2:\n        return False\n    top = int(input('Enter a number: '))\n" \
           "    return all(n % i for i in range(2, top))\n"
    report = run_code_tests(sandbox, code, smoke_calls(code, "Write a Python function that checks if a number is prime."))
    assert not report.passed and "EOFError" in report.error
