"""Node energy statistics and their Prometheus text exposition, served on 127.0.0.1 by default."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from covey.errors import PortInUse
from covey.types import Battery, Energy

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeEnergyStats:
    """Running totals a node keeps per model; also its J/token for announcements and placement."""

    def __init__(self, *, smoothing: float = 0.2) -> None:
        self.smoothing = smoothing
        self._lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.tokens: dict[str, int] = defaultdict(int)
        self.joules: dict[tuple[str, str], float] = defaultdict(float)
        self.marginal: dict[str, float] = defaultdict(float)
        self.model_joules: dict[str, float] = defaultdict(float)
        self.j_per_token: dict[str, float] = {}

    def observe(self, model_id: str, energy: Energy, completion_tokens: int) -> None:
        with self._lock:
            self.requests[model_id] += 1
            self.tokens[model_id] += completion_tokens
            self.model_joules[model_id] += energy.joules
            for c in energy.components:
                self.joules[(c.name, c.method.value)] += c.joules
                self.marginal[c.name] += c.marginal_joules
            if completion_tokens > 0:
                jpt = energy.joules / completion_tokens
                old = self.j_per_token.get(model_id)
                self.j_per_token[model_id] = jpt if old is None else (1 - self.smoothing) * old + self.smoothing * jpt

    def joules_per_token(self, model_id: str | None = None) -> float:
        """Smoothed J/token for one model, or the token-weighted mean over all; 0 when unknown."""
        with self._lock:
            if model_id is not None:
                return self.j_per_token.get(model_id, 0.0)
            total = sum(self.tokens[m] for m in self.j_per_token)
            if not total:
                return 0.0
            return sum(self.j_per_token[m] * self.tokens[m] for m in self.j_per_token) / total


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


MAX_LABEL_CHARS = 64
"""Label values are identifiers (a node name, a model id, a meter kind), never sentences: every distinct
value is a new time series, and long ones bloat every scrape."""


def _short(v: str) -> str:
    v = " ".join(str(v).split())
    return v if len(v) <= MAX_LABEL_CHARS else v[: MAX_LABEL_CHARS - 1] + "~"


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_esc(_short(v))}"' for k, v in kv.items()) + "}"


def render_metrics(stats: NodeEnergyStats, *, node: str = "", power_watts: float | None = None,
                   battery: Battery | None = None, meter: str = "", method: str = "") -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{labels} {value!r}")

    with stats._lock:
        family("covey_energy_joules_total", "counter", "Energy attributed to requests, by component and method.",
               [(_labels(node=node, component=c, method=m), j) for (c, m), j in sorted(stats.joules.items())])
        family("covey_energy_marginal_joules_total", "counter", "Energy above idle attributed to requests.",
               [(_labels(node=node, component=c), j) for c, j in sorted(stats.marginal.items())])
        family("covey_requests_total", "counter", "Generate requests completed, by model.",
               [(_labels(node=node, model=m), float(n)) for m, n in sorted(stats.requests.items())])
        family("covey_tokens_generated_total", "counter", "Completion tokens generated, by model.",
               [(_labels(node=node, model=m), float(n)) for m, n in sorted(stats.tokens.items())])
        family("covey_joules_per_token", "gauge", "Smoothed energy per generated token, by model.",
               [(_labels(node=node, model=m), j) for m, j in sorted(stats.j_per_token.items())])
    if power_watts is not None:
        family("covey_power_watts", "gauge", "Power over the last measurement interval.",
               [(_labels(node=node), float(power_watts))])
    if battery is not None and battery.present:
        family("covey_battery_percent", "gauge", "Battery charge.", [(_labels(node=node), float(battery.percent))])
        family("covey_on_battery", "gauge", "1 while running on battery.",
               [(_labels(node=node), 1.0 if battery.on_battery else 0.0)])
    if meter:
        family("covey_energy_meter_info", "gauge",
               "How this node knows its energy: meter kind and method (`covey node calibrate` explains).",
               [(_labels(node=node, meter=meter, **({"method": method} if method else {})), 1.0)])
    return "\n".join(out) + "\n"


class MetricsServer:
    """GET /metrics answers with `render()`; binds 127.0.0.1 unless told otherwise."""

    def __init__(self, render: Callable[[], str], host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "try /metrics")
                    return
                try:
                    body = render().encode()
                except Exception:
                    logger.exception("rendering metrics failed")
                    self.send_error(500, "rendering metrics failed; see the node's log")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("metrics: " + format, *args)

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise PortInUse(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="covey-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
