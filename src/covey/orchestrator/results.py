"""What the orchestrator hands back: streamed tokens, notices, and the result of one answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from covey.types import AttemptOutcome, Energy, FinishReason, Frozen


class Token(Frozen):
    """A piece of the answer as it streams. `attempt` counts from 0; a new attempt restarts the answer."""

    text: str
    attempt: int = 0


class Notice(Frozen):
    """Something the user should see while the answer streams (escalation, failover, delegation, a busy node)."""

    kind: Literal["escalate", "failover", "delegate", "grounding", "tool", "replaced", "busy", "trimmed"]
    text: str


class Confidence(Frozen):
    mean_logprob: float
    min_logprob: float
    check: str = Field("", description="per-agent check that ran, e.g. 'python_parses'")
    check_ok: bool = True
    passed: bool = True
    reason: str = ""
    verified: str = Field("", description="what proved the answer right (the prompt's tests passed, the tools "
                                          "computed its value): it stands whatever its log-probs say")


class Attempt(Frozen):
    node_id: str
    node_name: str
    address: str
    model_id: str
    outcome: AttemptOutcome
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    tokens_per_second: float = 0.0
    energy: Energy = Energy()
    finish: FinishReason | None = None
    confidence: Confidence | None = None
    reason: str = ""


class ToolCallRecord(Frozen):
    """One tool call made while answering: what ran, with what, how it ended, and what it cost."""

    tool: str = Field(description="the tool's name, e.g. 'calculator', 'python'")
    arguments: dict[str, Any] = Field(default_factory=dict)
    ok: bool
    outcome: str = Field("", description="the result line, or the error when ok is false")
    seconds: float = Field(0.0, ge=0.0)
    energy: Energy = Energy()


class Source(Frozen):
    n: int
    path: str
    position: str = ""
    score: float = 0.0


class AnswerResult(Frozen):
    session_id: str
    text: str
    route: str
    route_confidence: float
    route_note: str = ""
    agent: str
    node: str
    model: str
    attempts: tuple[Attempt, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    energy: Energy = Energy()
    overhead: Energy = Field(Energy(), description="the orchestrator's own share: routing, retrieval")
    sources: tuple[Source, ...] = ()
    notes: tuple[str, ...] = ()
    tool_calls: tuple[ToolCallRecord, ...] = Field((), description="every tool call made for this answer")
    unanswered: bool = Field(False, description="no answer passed its checks: the text says 'I could not get this "
                             "right' and what was tried (`covey ask` exits 3)")
    grounding: Literal["documents", "not_from_documents", ""] = Field(
        "", description="'documents': grounded in the passages in sources; 'not_from_documents': your documents "
        "were searched and held nothing strong, so the answer is the model's own; '': no documents were searched")

    @property
    def escalated(self) -> bool:
        return any(a.outcome == "escalated" for a in self.attempts)

    @property
    def failed_over(self) -> bool:
        return any(a.outcome == "failed_over" for a in self.attempts)

    @property
    def answering_tool(self) -> str | None:
        """The tool that answered when no model ran ('calculator' for model 'tool:calculator'), else None."""
        if self.attempts or not self.model.startswith("tool:"):
            return None
        return self.model.removeprefix("tool:")

    def summary_line(self) -> str:
        """The line under an answer: who answered, tokens and speed (when a model ran), joules, route."""
        method = self.energy.method.value
        energy = f"{self.energy.joules:.2f} J ({method}) · route {self.route}"
        if (tool := self.answering_tool) is not None:  # no tokens to count: say what answered instead
            return f"answered by the {tool} tool · {energy}"
        last = self.attempts[-1] if self.attempts else None
        tps = last.tokens_per_second if last else 0.0
        return (f"{self.node} · {self.model} · {self.prompt_tokens} in / {self.completion_tokens} out · "
                f"{tps:.0f} tok/s · {energy}" + (f" · {len(self.attempts)} attempts" if len(self.attempts) > 1 else ""))
