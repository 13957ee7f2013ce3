"""The shipped router on prompts it never trained on, with the real MiniLM."""

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from covey.router.classifier import EmbeddingRouter, builtin_examples, read_examples, shipped_heads_dir
from covey.router.cli import make_eval_route
from covey.router.evaluation import score_routes
from covey.types import Message

HELDOUT = Path(__file__).parents[2] / "data" / "router_heldout.jsonl"
VICUNA = Path("/work/shared/eval/vicuna_bench_questions.jsonl")
VICUNA_ROUTES = {"coding": "code", "math": "math", "writing": "writing", "roleplay": "chat", "knowledge": "knowledge"}

ARTICLE = (
    "The regional rail operator announced on Monday that it will add forty new trains to its fleet by 2027. "
    "The order, worth 1.2 billion euros, is meant to end years of overcrowding on commuter lines. Unions "
    "welcomed the news but warned that staff shortages, not trains, are the main cause of cancellations. "
    "The operator says it will hire 300 drivers over the next two years and open a new training centre."
)


def test_heldout_macro_f1_meets_the_target(real_router):
    rows = read_examples(HELDOUT)
    decisions = real_router.classify_many([r.prompt for r in rows])
    report = score_routes([r.route for r in rows], [d.route for d in decisions])
    assert report.macro_f1 >= 0.85, report
    assert report.score("summarize").f1 >= 0.8


def test_vicuna_categories_route_sensibly(real_router):
    rows = [json.loads(line) for line in VICUNA.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["category"] in VICUNA_ROUTES]
    decisions = real_router.classify_many([r["turns"][0] for r in rows])
    report = score_routes([VICUNA_ROUTES[r["category"]] for r in rows], [d.route for d in decisions])
    assert report.macro_f1 >= 0.75, report


def test_pasted_text_does_not_drown_the_instruction(real_router):
    assert real_router.classify(f"Give me the key points of this:\n\n{ARTICLE}").route == "summarize"
    assert real_router.classify(f"{ARTICLE}\n\nSum that up in one line.").route == "summarize"
    assert real_router.classify(f"Translate this into German:\n\n{ARTICLE}").route == "translate"
    # Known weakness (see the report): editing requests over long pasted text ("Proofread this:")
    # often go to summarize, because pasted material is the strongest summarize cue.
    fix = "Why does this crash?\n```python\nitems = {}\nprint(items[0])\n```"
    assert real_router.classify(fix).route == "code"


def test_follow_up_keeps_the_previous_route(real_router):
    history = [Message(role="user", content="Translate 'good morning, my friend' into Spanish."),
               Message(role="assistant", content="Buenos días, amigo mío.")]
    decision = real_router.classify("and in French?", history)
    assert decision.route == "translate", decision
    summary = [Message(role="user", content=f"Summarize this article:\n\n{ARTICLE}")]
    assert real_router.classify("shorter please", summary).route == "summarize"


def test_gibberish_falls_back_to_chat_and_says_so(real_router):
    d = real_router.classify("zxq vlorp mmm")
    assert d.route == "chat"
    assert d.runner_up is not None


class CountingEmbedder:
    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.calls: list[int] = []

    def embed(self, texts):
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def test_cached_head_starts_without_embedding_the_examples(minilm, router_data_dir, real_router):
    counting = CountingEmbedder(minilm)
    # The shipped examples' head comes with the package now (nothing is cached in the data dir for them).
    router = EmbeddingRouter.fit(counting, builtin_examples(), cache_dir=router_data_dir / "cache" / "router",
                                 shipped_dir=shipped_heads_dir())
    assert counting.calls == []
    assert router.threshold == real_router.threshold
    assert router.classify("What is 12 squared?").route == "math"
    assert counting.calls == [1]


def test_eval_route_command_on_the_real_router(real_router, tmp_path):
    app = typer.Typer()
    app.command("route")(make_eval_route(lambda settings: real_router))
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["route", str(HELDOUT), "--data-dir", str(tmp_path)], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.stderr  # the summary; the tables are TSV on stdout in a pipe
    assert result.stdout.startswith("route\tprecision\trecall\tF1\tsupport\n")
    assert "\nexpected\tchat\tcode\t" in result.stdout  # the confusion matrix, headed by whole route names


def test_the_shipped_router_runs_onnx_int8(minilm, real_router, tmp_path):
    assert minilm.name == "all-MiniLM-L6-v2-onnx-int8"
    app = typer.Typer()
    app.command("route")(make_eval_route(lambda settings: real_router))
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["route", str(HELDOUT), "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    encoder = json.loads(result.output)["encoder"]
    assert encoder.startswith("onnx-int8 (onnxruntime ") and encoder.endswith(", 1 thread)"), encoder
