"""Calls of model-written functions on an ordinary input, for code whose prompt gave no tests."""

import pytest

from covey.tools.testing import smoke_calls


@pytest.mark.parametrize(("code", "calls"), [
    ("def reverse_string(s):\n    return s[::-1]\n", "reverse_string('hello world')"),
    ("def total(nums):\n    return sum(nums)\n", "total([3, 1, 2])"),
    ("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n", "fib(5)"),
    ("def f(x: float, name: str) -> str:\n    return name * int(x)\n", "f(2.5, 'hello world')"),
    ("def count_words(sentence):\n    return len(sentence.split())\n\ndef double(my_list):\n    return my_list * 2\n",
     "count_words('hello world')\ndouble([3, 1, 2])"),
])
def test_functions_whose_inputs_are_plain_are_called_once(code, calls):
    assert smoke_calls(code) == calls


@pytest.mark.parametrize("code", [
    "def lcs(a, b):\n    return 0\n",  # a and b could be strings or numbers: not guessed
    "def greet(name='you'):\n    return 'hi ' + name\n",  # defaults: the caller decides
    "def ask():\n    return input('name? ')\n", "def f(*args):\n    return args\n",
    "def read_it(path):\n    return open(path).read()\n", "def _helper(s):\n    return s\n",
    "def main(s):\n    print(s)\n", "class Stack:\n    def push(self, s):\n        pass\n",
    "def broken(s:\n", "print('hello')\n",
])
def test_nothing_is_called_when_the_input_is_not_plain_or_the_code_reaches_out(code):
    assert smoke_calls(code) == ""
