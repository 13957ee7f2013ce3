"""Cascade: decide from a small model's own answer whether a bigger one is worth its energy."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from covey.orchestrator.results import Confidence

Checker = Callable[[str, str], "tuple[bool, str]"]
"""(prompt, answer) -> (ok, reason): a per-agent check such as 'the code parses'."""


def assess(prompt: str, answer: str, logprobs: Sequence[float], *, min_mean_logprob: float | None,
           min_token_logprob: float | None, checker: Checker | None = None, checker_name: str = "") -> Confidence:
    """Mean and minimum token log-probability, plus an optional content check."""
    lps = [lp for lp in logprobs if math.isfinite(lp)]
    mean = sum(lps) / len(lps) if lps else float("-inf")
    low = min(lps) if lps else float("-inf")
    reasons: list[str] = []
    if not answer.strip():
        reasons.append("the answer is empty")
    if min_mean_logprob is not None and mean < min_mean_logprob:
        reasons.append(f"mean token log-prob {mean:.2f} < {min_mean_logprob:.2f}")
    if min_token_logprob is not None and low < min_token_logprob:
        reasons.append(f"lowest token log-prob {low:.2f} < {min_token_logprob:.2f}")
    check_ok, check_reason = True, ""
    if checker is not None:
        check_ok, check_reason = checker(prompt, answer)
        if not check_ok:
            reasons.append(f"{checker_name or 'check'} failed: {check_reason}")
    return Confidence(mean_logprob=mean if lps else 0.0, min_logprob=low if lps else 0.0, check=checker_name,
                      check_ok=check_ok, passed=not reasons, reason="; ".join(reasons))
