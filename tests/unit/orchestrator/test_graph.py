"""The orchestrator graph with fakes: routing, delegation, escalation, failover, memory, energy sums."""

from __future__ import annotations

import pytest

from covey.errors import BadRequest, NoCapableNode
from covey.models.catalog import Catalog
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult, Notice, Token
from covey.settings import OrchestratorSettings

from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec
from polling import until

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


async def make(clients, agents=None, router=None, local=None, recorded=None, **settings_kw):
    settings = OrchestratorSettings(discover=False, embedded="never", local_node=local, **settings_kw)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    deps = Deps(router=router or ScriptedRouter(), pool=pool, catalog=Catalog(), settings=settings,
                agents=agents or roster(spec("chatter", (SMOL, GEMMA))),
                record=(recorded.append if recorded is not None else None))
    return Orchestrator(deps)


async def events(orch, prompt, session="s"):
    return [ev async for ev in orch.stream(prompt, session_id=session)]


async def test_answer_streams_tokens_then_result_with_energy_and_route():
    router = ScriptedRouter("chat")
    client = FakeNodeClient(node_info("den", {SMOL: 100}), joules=2.5)
    recorded: list[AnswerResult] = []
    orch = await make([client], router=router, recorded=recorded)
    evs = await events(orch, "hi there")
    assert [e.text for e in evs if isinstance(e, Token)] == ["Hello", " world"]
    result = evs[-1]
    assert isinstance(result, AnswerResult)
    assert result.text == "Hello world" and result.route == "chat" and result.agent == "chatter"
    assert result.node == "den" and result.model == SMOL
    assert result.energy.joules == pytest.approx(2.5) and result.energy.method.value == "estimated"
    assert recorded == [result]
    assert router.seen[0][0] == "hi there"
    assert client.seen[0].messages[-1].content == "hi there"


async def test_blank_lines_a_model_puts_before_its_answer_are_not_part_of_the_result():
    client = FakeNodeClient(node_info("den", {SMOL: 100}), words=("\n", " \n", "  Hello", " world", "\n\n"))
    result = (await events(await make([client], router=ScriptedRouter("chat")), "hi there"))[-1]
    assert isinstance(result, AnswerResult) and result.text == "Hello world"
    code = FakeNodeClient(node_info("den", {SMOL: 100}), words=("\n", "    x = 1\n", "    y = 2\n"))
    result = (await events(await make([code], router=ScriptedRouter("chat")), "hi there"))[-1]
    assert result.text == "    x = 1\n    y = 2"  # bare code keeps its indentation


async def test_a_conversation_too_long_for_the_model_is_left_out_once_and_said():
    from covey.errors import PromptTooLong

    class SmallContext(FakeNodeClient):
        async def generate(self, req):
            if len(req.messages) > 2:  # system + the new message fit; any earlier turn does not
                self.seen.append(req)
                raise PromptTooLong("the prompt needs 2144 tokens; the context holds 2048")
            async for ev in super().generate(req):
                yield ev

    client = SmallContext(node_info("den", {SMOL: 100}))
    orch = await make([client], router=ScriptedRouter("chat"))
    await events(orch, "first question", session="long")
    evs = await events(orch, "second question", session="long")
    result = evs[-1]
    assert isinstance(result, AnswerResult) and result.text == "Hello world"
    assert [m.content for m in client.seen[-1].messages if m.role != "system"] == ["second question"]
    assert any(isinstance(e, Notice) and e.kind == "trimmed" for e in evs)
    assert any("too long for" in n and "answered without it" in n for n in result.notes)


async def test_conversation_memory_per_session():
    router = ScriptedRouter()
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], router=router)
    await events(orch, "first question", session="a")
    await events(orch, "second question", session="a")
    await events(orch, "other session", session="b")
    second = client.seen[1].messages
    assert [m.content for m in second if m.role != "system"] == ["first question", "Hello world", "second question"]
    assert [m.content for m in client.seen[2].messages if m.role != "system"] == ["other session"]
    assert [m.content for m in router.seen[1][1]] == ["first question", "Hello world"]


async def test_delegates_when_local_node_cannot_carry_model_and_says_why():
    weak = FakeNodeClient(node_info("old-laptop", {}, cap_mb=200))
    strong = FakeNodeClient(node_info("den-pc", {GEMMA: 50}))
    agents = roster(spec("writer", (GEMMA,)))
    orch = await make([weak, strong], agents=agents, local="old-laptop")
    evs = await events(orch, "write me a poem")
    result = evs[-1]
    assert result.node == "den-pc" and weak.seen == []
    assert any(isinstance(e, Notice) and e.kind == "delegate" for e in evs)
    assert any("allows 200 MB: delegated to 'den-pc'" in n for n in result.notes), result.notes


async def test_prefers_local_node_when_it_qualifies():
    local = FakeNodeClient(node_info("laptop", {SMOL: 20}, jpt=0.5))
    other = FakeNodeClient(node_info("den", {SMOL: 200}, jpt=0.01))
    orch = await make([local, other], local="laptop")
    result = (await events(orch, "hi"))[-1]
    assert result.node == "laptop"


async def test_picks_lowest_energy_and_skips_full_queues_and_low_battery():
    from covey.types import Battery

    hungry = FakeNodeClient(node_info("hungry", {SMOL: 100}, jpt=1.0))
    frugal_busy = FakeNodeClient(node_info("busy", {SMOL: 100}, jpt=0.01, depth=4, limit=4))
    frugal_flat = FakeNodeClient(node_info("phone", {SMOL: 100}, jpt=0.01,
                                           battery=Battery(present=True, on_battery=True, percent=10)))
    frugal = FakeNodeClient(node_info("pi", {SMOL: 100}, jpt=0.1))
    orch = await make([hungry, frugal_busy, frugal_flat, frugal])
    result = (await events(orch, "hi"))[-1]
    assert result.node == "pi"


async def test_escalates_on_low_confidence_and_keeps_every_attempt():
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("um",), logprob=-4.0, joules=1.0)
    big = FakeNodeClient(node_info("b", {GEMMA: 50}), words=("Paris",), logprob=-0.2, joules=3.0)
    agents = roster(spec("k", (SMOL, GEMMA), min_mean_logprob=-1.5))
    orch = await make([small, big], agents=agents)
    evs = await events(orch, "capital of France?")
    result = evs[-1]
    assert result.text == "Paris" and result.model == GEMMA
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert result.energy.joules == pytest.approx(4.0)
    assert any(isinstance(e, Notice) and e.kind == "escalate" for e in evs)
    assert [e.attempt for e in evs if isinstance(e, Token)] == [0, 1]


async def test_checker_failure_escalates_and_top_of_ladder_keeps_answer():
    # With the tools' answers and verification off (issue 11 made them the default: a failed check
    # no longer stands, see test_tool_steps.py), the top of the ladder keeps its answer.
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("no number",))
    agents = roster(spec("m", (SMOL, GEMMA), checker="number_consistent"))
    orch = await make([small], agents=agents, tool_answers=False, verify_answers=False)
    result = (await events(orch, "2+2?"))[-1]
    assert result.text == "no number"
    assert any("no stronger rung could run (no node serves gemma3" in n for n in result.notes), result.notes
    assert [a.outcome for a in result.attempts] == ["answered"]


async def test_failover_continues_from_tokens_already_produced():
    dying = FakeNodeClient(node_info("a", {SMOL: 100}, jpt=0.1), words=("The", " sea", " is"), die_after=2)
    backup = FakeNodeClient(node_info("b", {SMOL: 90}, jpt=0.2), words=(" blue",))
    orch = await make([dying, backup])
    evs = await events(orch, "describe the sea")
    result = evs[-1]
    assert result.text == "The sea blue"
    assert backup.seen[0].continue_from == "The sea"
    assert [a.outcome for a in result.attempts] == ["failed_over", "answered"]
    assert any(isinstance(e, Notice) and e.kind == "failover" for e in evs)
    assert result.energy.joules == pytest.approx(0.1 * 2 + 1.0)


async def test_failover_with_nowhere_to_go_lists_what_was_tried():
    dying = FakeNodeClient(node_info("a", {SMOL: 100}), die_after=1)
    orch = await make([dying])
    with pytest.raises(NoCapableNode, match="tried 'a'"):
        await events(orch, "hi")


async def test_no_node_for_any_rung_is_a_clear_error():
    orch = await make([FakeNodeClient(node_info("a", {"other-model": 10}))])
    with pytest.raises(NoCapableNode, match="no node serves smollm2"):
        await events(orch, "hi")


async def test_empty_prompt_is_refused():
    orch = await make([FakeNodeClient(node_info("a", {SMOL: 10}))])
    with pytest.raises(BadRequest):
        await events(orch, "   ")


async def test_node_on_low_battery_takes_only_light_models():
    light_only = node_info("phone", {GEMMA: 100, SMOL: 100}, jpt=0.001).model_copy(
        update={"light_only": True, "note": "on battery at 20 % (< 30 %): light work only"})
    other = FakeNodeClient(node_info("den", {GEMMA: 50}, jpt=0.5))
    phone = FakeNodeClient(light_only)
    orch = await make([phone, other], agents=roster(spec("g", (GEMMA,))))
    assert (await events(orch, "hi"))[-1].node == "den"
    orch = await make([phone, other], agents=roster(spec("s", (SMOL,))))
    assert (await events(orch, "hi"))[-1].node == "phone"


class RecordingGrounding:
    """Returns a scripted grounding result and records the questions it was asked."""

    def __init__(self, found: bool | None) -> None:
        self.found = found
        self.seen: list[str] = []

    async def ground(self, query, *, budget_tokens):
        from covey.orchestrator.results import Source
        from covey.rag.grounding import NOTHING_FOUND, GroundedPrompt
        from covey.types import Message

        self.seen.append(query)
        if self.found is None:
            return None, ()
        if not self.found:
            return GroundedPrompt(found=False, reply=NOTHING_FOUND), ()
        msgs = (Message(role="system", content="Cite like [1]."),
                Message(role="user", content=f"[1] the wifi password is tulip\n\nQuestion: {query}"))
        return GroundedPrompt(found=True, messages=msgs), (Source(n=1, path="/docs/home.md", position="5-6"),)


async def grounded_orch(found):
    client = FakeNodeClient(node_info("den", {SMOL: 100}), words=("tulip [1]",))
    grounding = RecordingGrounding(found)
    orch = await make([client], agents=roster(spec("librarian", (SMOL,), routes=("chat",)).model_copy(
        update={"grounded": True})))
    orch.deps.grounding = grounding
    return orch, client, grounding


async def test_grounded_answer_carries_passages_and_sources():
    orch, client, grounding = await grounded_orch(True)
    result = (await events(orch, "what is the wifi password?"))[-1]
    assert grounding.seen == ["what is the wifi password?"]
    assert "[1] the wifi password is tulip" in client.seen[0].messages[-1].content
    assert result.sources[0].path == "/docs/home.md" and result.text == "tulip [1]"


async def test_nothing_relevant_in_strict_mode_says_so_without_asking_a_model():
    from covey.rag.grounding import NOTHING_FOUND

    orch, client, grounding = await grounded_orch(False)
    grounding.strict = True
    evs = await events(orch, "who won the 1954 world cup?")
    assert client.seen == []
    assert evs[-1].text == NOTHING_FOUND and evs[-1].node == "orchestrator"
    assert any(isinstance(e, Notice) and e.kind == "grounding" for e in evs)


async def test_no_documents_at_all_answers_from_the_model_with_a_note():
    orch, client, _ = await grounded_orch(None)
    result = (await events(orch, "capital of France?"))[-1]
    assert client.seen and result.text == "tulip [1]"
    assert any("no documents added yet" in n for n in result.notes)


async def test_answers_in_flight_count_toward_a_nodes_queue():
    import asyncio

    gate = asyncio.Event()

    class SlowClient(FakeNodeClient):
        started: list = []

        async def generate(self, req):
            self.started.append(self.info_.name)
            await gate.wait()
            async for ev in super().generate(req):
                yield ev

    # Zeroconf-like snapshots: queue depth 0 is all the directory knows; the limit is one at a time.
    a = SlowClient(node_info("a", {SMOL: 100}, jpt=0.01, limit=1))
    b = SlowClient(node_info("b", {SMOL: 100}, jpt=0.02, limit=1))
    orch = await make([a, b])
    first = asyncio.create_task(events(orch, "one", session="1"))
    await until(lambda: SlowClient.started, what="the first answer to start")
    second = asyncio.create_task(events(orch, "two", session="2"))
    await until(lambda: len(SlowClient.started) == 2, what="the second answer to start")
    assert SlowClient.started == ["a", "b"]
    gate.set()
    r1, r2 = (await first)[-1], (await second)[-1]
    assert (r1.node, r2.node) == ("a", "b")  # the cheaper node was taken, so the second went elsewhere
    assert orch.deps.pool.nodes()[0].models[0].queue_depth == 0


async def test_missing_rung_is_skipped_quietly_on_the_way_up():
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("hmm",), logprob=-3.0)
    big = FakeNodeClient(node_info("b", {"qwen2.5-0.5b-instruct-q4_k_m": 40}), words=("Paris",), logprob=-0.1)
    agents = roster(spec("k", (SMOL, GEMMA, "qwen2.5-0.5b-instruct-q4_k_m"), min_mean_logprob=-1.0))
    orch = await make([small, big], agents=agents)
    result = (await events(orch, "capital of France?"))[-1]
    assert result.text == "Paris" and [a.model_id for a in result.attempts] == [SMOL, "qwen2.5-0.5b-instruct-q4_k_m"]
    assert not any(GEMMA in n for n in result.notes), result.notes  # no node serves Gemma: nothing to say


async def test_unsure_at_the_top_is_said_once_per_session():
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("hmm",), logprob=-3.0)
    agents = roster(spec("k", (SMOL, GEMMA, "llama3.2-3b-instruct-q4_k_m"), min_mean_logprob=-1.0))
    orch = await make([small], agents=agents)
    first = (await events(orch, "one?", session="s1"))[-1]
    second = (await events(orch, "two?", session="s1"))[-1]
    other = (await events(orch, "three?", session="s2"))[-1]
    (note,) = [n for n in first.notes if "unsure" in n]
    assert "no node serves gemma3-270m-q4_k_m, llama3.2-3b-instruct-q4_k_m" in note and "\n" not in note
    assert "covey agents" in note
    assert not [n for n in second.notes if "unsure" in n], second.notes  # same session: said already
    assert [n for n in other.notes if "unsure" in n] == [note]
    assert second.attempts[-1].confidence is not None and not second.attempts[-1].confidence.passed
