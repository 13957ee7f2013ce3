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


PRIME_WITH_INPUT = ("def is_prime(n):\n    if n < 2:\n        return False\n"
                    "    top = int(input('Enter a number: '))\n    return all(n % i for i in range(2, top))\n")


def test_a_function_of_its_argument_that_reads_input_is_called_unless_the_prompt_asks_for_typing():
    """SmolLM2's is_prime(n) read input(): for "checks if a number is prime" that is a defect."""
    assert smoke_calls(PRIME_WITH_INPUT, "Write a Python function that checks if a number is prime.") == "is_prime(5)"
    for asks in ("Write a program that asks the user for a number and says if it is prime.",
                 "Write a script where the user enters a number; print whether it is prime."):
        assert smoke_calls(PRIME_WITH_INPUT, asks) == ""
    assert smoke_calls(PRIME_WITH_INPUT) == ""  # no prompt to read: as before
