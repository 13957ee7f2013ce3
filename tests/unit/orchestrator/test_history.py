"""The orchestrator with a conversation store: memory outlives the Orchestrator, pins, given history."""

from __future__ import annotations

from covey.history.store import HistoryStore
from covey.models.catalog import Catalog
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult
from covey.settings import OrchestratorSettings
from covey.types import Message

from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


async def make(clients, store, agents=None, router=None, turns=6, **overrides):
    settings = OrchestratorSettings(discover=False, embedded="never", **overrides)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    deps = Deps(router=router or ScriptedRouter(), pool=pool, catalog=Catalog(), settings=settings,
                agents=agents or roster(spec("chatter", (SMOL, GEMMA))))
    return Orchestrator(deps, history=store, history_turns=turns)


def contents(req):
    return [m.content for m in req.messages if m.role != "system"]


async def test_a_new_orchestrator_on_the_same_file_remembers_the_session(tmp_path):
    path = tmp_path / "history.db"
    first_client = FakeNodeClient(node_info("den", {SMOL: 100}), words=("Nice", " cat"))
    first = await make([first_client], HistoryStore(path))
    await first.ask("my cat is Miso", session_id="pets")
    await first.close()

    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    router = ScriptedRouter()
    second = await make([client], HistoryStore(path), router=router)
    await second.ask("What is my cat called?", session_id="pets")
    await second.ask("unrelated", session_id="other")
    assert contents(client.seen[0]) == ["my cat is Miso", "Nice cat", "What is my cat called?"]
    assert [m.content for m in router.seen[0][1]] == ["my cat is Miso", "Nice cat"]
    assert contents(client.seen[1]) == ["unrelated"]
    # no duplicate turns from the checkpointer: the third answer sees exactly two earlier turns
    await second.ask("and again?", session_id="pets")
    assert contents(client.seen[2]) == ["my cat is Miso", "Nice cat", "What is my cat called?", "Hello world",
                                        "and again?"]
    store = HistoryStore(path)
    assert [t.prompt for t in store.search(session="pets", limit=None)] == [
        "and again?", "What is my cat called?", "my cat is Miso"]
    # one-answer checkpoint threads are dropped, so a long-running server does not grow
    assert not list(second.graph.checkpointer.list(None))
    await second.close()


async def test_history_turns_caps_what_is_sent(tmp_path):
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], HistoryStore(tmp_path / "h.db"), turns=1)
    for q in ("one", "two", "three"):
        await orch.ask(q, session_id="s")
    assert contents(client.seen[2]) == ["two", "Hello world", "three"]


async def test_text_free_store_records_energy_and_keeps_memory_in_process_only(tmp_path):
    path = tmp_path / "h.db"
    client = FakeNodeClient(node_info("den", {SMOL: 100}), joules=2.0)
    orch = await make([client], HistoryStore(path, keep_text=False))
    await orch.ask("secret one", session_id="s")
    await orch.ask("secret two", session_id="s")
    assert contents(client.seen[1]) == ["secret one", "Hello world", "secret two"]  # in-memory checkpointer
    turns = HistoryStore(path).search(limit=None)
    assert [(t.prompt, t.joules) for t in turns] == [(None, 2.0), (None, 2.0)]
    other = await make([client], HistoryStore(path, keep_text=False))
    await other.ask("secret three", session_id="s")
    assert contents(client.seen[2]) == ["secret three"]


async def test_given_history_replaces_the_stored_turns_and_the_turn_is_still_logged(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], store)
    await orch.ask("stored question", session_id="api")
    given = [Message(role="user", content="hi"), Message(role="assistant", content="hello")]
    await orch.ask("next", session_id="api", history=given)
    assert contents(client.seen[1]) == ["hi", "hello", "next"]
    assert store.count() == 2


async def test_pinned_agent_skips_the_router_and_pinned_model_replaces_the_ladder(tmp_path):
    router = ScriptedRouter("chat")
    client = FakeNodeClient(node_info("den", {SMOL: 100, GEMMA: 50}), logprob=-5.0)
    agents = roster(spec("chatter", (SMOL, GEMMA)),
                    spec("coder", (SMOL, GEMMA), routes=("code",), min_mean_logprob=-0.5))
    orch = await make([client], HistoryStore(tmp_path / "h.db"), agents=agents, router=router)
    r: AnswerResult = await orch.ask("print hi", agent="coder")
    assert r.agent == "coder" and r.route == "code" and router.seen == []
    assert r.escalated and r.model == GEMMA  # unsure on the first rung: climbs the coder's ladder
    r2 = await orch.ask("print hi", agent="coder", model=SMOL)
    assert r2.model == SMOL and not r2.escalated  # one pinned rung: nothing to climb to
    assert any("unsure" in n and "top of the" in n for n in r2.notes), r2.notes


async def test_max_tokens_caps_the_agents_limit_never_raises_it(tmp_path):
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], HistoryStore(tmp_path / "h.db"))
    await orch.ask("short please", max_tokens=5)
    await orch.ask("long please", max_tokens=10_000)
    assert [r.max_tokens for r in client.seen] == [5, 32]  # the spec allows 32


class BrokenStore:
    """A store whose disk is full: it records what it was asked to keep, then fails."""

    keeps_text = True

    def __init__(self) -> None:
        self.asked: list[str] = []

    def recent(self, session, turns):
        return []

    def append(self, prompt, result):
        from covey.errors import HistoryError

        self.asked.append(prompt)
        raise HistoryError("cannot write to the conversation history h.db: disk I/O error")


async def test_a_failing_store_loses_the_history_entry_not_the_answer(caplog):
    store = BrokenStore()
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], store)
    r = await orch.ask("still answer me", session_id="s")
    assert r.text == "Hello world" and store.asked == ["still answer me"]
    assert "could not keep this turn" in caplog.text


async def test_an_answer_that_drifts_into_the_earlier_turns_language_is_retried_without_them(tmp_path):
    from fakes import ScriptedNodeClient

    client = ScriptedNodeClient(node_info("den", {SMOL: 100, GEMMA: 50}), [
        "Bonjour mes amis.",
        "Bonjour grand-mère, je vous souhaite une excellente journée avec toute la famille !",
        "Hello Grandma, I hope you are having a lovely day!"])
    orch = await make([client], HistoryStore(tmp_path / "h.db"),
                      agents=roster(spec("chatter", (SMOL, GEMMA), checker="nonempty")))
    await orch.ask("Translate 'good morning, my friends' into French.", session_id="s")
    # (a request that points back, so the turns go with it; one that stands alone goes without them)
    result = await orch.ask("And now say hello to my grandmother in one friendly sentence.", session_id="s")
    # the French reply imitated the turn before; the same rung tries again with the new message alone
    assert [r.model_id for r in client.seen[1:]] == [SMOL, SMOL]
    assert len(contents(client.seen[1])) == 3 and contents(client.seen[2]) == [
        "And now say hello to my grandmother in one friendly sentence."]
    assert result.text == "Hello Grandma, I hope you are having a lovely day!" and result.model == SMOL
    assert any("as the earlier turns are; trying again without them" in n for n in result.notes)
    # the next turn has the conversation again
    await orch.ask("Thanks!", session_id="s")
    assert len(contents(client.seen[3])) == 5
    await orch.close()


async def test_when_an_earlier_rungs_answer_stands_the_result_names_its_model(tmp_path):
    from fakes import ScriptedNodeClient

    smol = ScriptedNodeClient(node_info("old", {SMOL: 100}), ["Hello there, my friend."], logprob=-5.0)
    gemma = ScriptedNodeClient(node_info("den", {GEMMA: 50}), [""])
    orch = await make([smol, gemma], HistoryStore(tmp_path / "h.db"),
                      agents=roster(spec("chatter", (SMOL, GEMMA), min_mean_logprob=-1.0)))
    result = await orch.ask("Say hello.")
    assert result.text == "Hello there, my friend." and (result.model, result.node) == (SMOL, "old")
    assert len(result.attempts) == 2
    await orch.close()


async def test_a_top_rung_far_less_sure_than_the_rung_below_does_not_replace_its_answer(tmp_path):
    from fakes import ScriptedNodeClient

    def pair(gemma_logprob: float):
        smol = ScriptedNodeClient(node_info("old", {SMOL: 100}), ["In twilight the laptop hums on."], logprob=-1.7)
        gemma = ScriptedNodeClient(node_info("den", {GEMMA: 50}), ["I love you because"], logprob=gemma_logprob)
        return [smol, gemma]

    agents = roster(spec("writer", (SMOL, GEMMA), min_mean_logprob=-1.6))
    orch = await make(pair(-2.45), HistoryStore(tmp_path / "a.db"), agents=agents)
    result = await orch.ask("Write a short poem about an old laptop.")
    assert result.text == "In twilight the laptop hums on." and result.model == SMOL and len(result.attempts) == 2
    assert any("gemma3-270m-q4_k_m was less sure of its answer (mean token log-prob -2.45) than "
               "smollm2-135m-instruct-q4_1 of its own (-1.70)" in n for n in result.notes)
    await orch.close()
    # within the margin the stronger rung's answer stands, as before
    orch = await make(pair(-1.8), HistoryStore(tmp_path / "b.db"), agents=agents)
    result = await orch.ask("Write a short poem about an old laptop.")
    assert result.text == "I love you because" and result.model == GEMMA
    await orch.close()


async def test_a_request_that_stands_alone_goes_without_the_earlier_turns(tmp_path):
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], HistoryStore(tmp_path / "h.db"))
    await orch.ask("Translate 'good morning' into French.", session_id="s")
    await orch.ask("Write a short poem about an old laptop that still works.", session_id="s")
    await orch.ask("Make it shorter.", session_id="s")
    # the poem is asked alone (a small model would copy the French); the follow-up gets the turns it points at
    assert contents(client.seen[1]) == ["Write a short poem about an old laptop that still works."]
    assert contents(client.seen[2])[-3:] == ["Write a short poem about an old laptop that still works.",
                                             "Hello world", "Make it shorter."]
    assert len(contents(client.seen[2])) == 5
    await orch.close()


async def test_with_every_question_the_turns_go_with_each_request(tmp_path):
    client = FakeNodeClient(node_info("den", {SMOL: 100}))
    orch = await make([client], HistoryStore(tmp_path / "h.db"), history_for="every_question")
    await orch.ask("Translate 'good morning' into French.", session_id="s")
    await orch.ask("Write a short poem about an old laptop that still works.", session_id="s")
    assert len(contents(client.seen[1])) == 3
    await orch.close()
