"""Prometheus metrics for the orchestrator behind `covey serve`: answers, escalations, failovers, joules."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

from covey.orchestrator.results import AnswerResult


class ServeMetrics:
    """One registry per app, so two apps in one process (tests) do not share counters."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.answers = Counter("covey_answers", "answers given", ["route", "node"], registry=r)
        self.escalations = Counter("covey_escalations", "answers that climbed to a stronger model",
                                   ["route", "node"], registry=r)
        self.failovers = Counter("covey_failovers", "attempts that moved to another node mid-answer",
                                 ["route", "node"], registry=r)
        self.joules = Counter("covey_answer_joules", "energy of answers in joules", ["route", "node", "method"],
                              registry=r)
        self.tokens = Counter("covey_completion_tokens", "tokens generated", ["route", "node"], registry=r)
        self.seconds = Histogram("covey_answer_seconds", "time to the whole answer", ["route"], registry=r,
                                 buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))
        self.requests = Counter("covey_http_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.in_flight = Gauge("covey_answers_in_flight", "answers in progress", registry=r)
        self.cancelled = Counter("covey_answers_cancelled", "answers stopped because the client went away",
                                 registry=r)

    def observe(self, result: AnswerResult) -> None:
        route, node = result.route, result.node
        self.answers.labels(route, node).inc()
        self.tokens.labels(route, node).inc(result.completion_tokens)
        self.joules.labels(route, node, result.energy.method.value).inc(result.energy.joules)
        self.seconds.labels(route).observe(result.seconds)
        for a in result.attempts:
            if a.outcome == "escalated":
                self.escalations.labels(route, a.node_name).inc()
            elif a.outcome == "failed_over":
                self.failovers.labels(route, a.node_name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
