"""The JSON shapes of OpenAI responses: chat.completion(.chunk), text_completion, usage, models, SSE lines."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from covey.orchestrator.results import AnswerResult
from covey.types import FinishReason


class Shape:
    """The JSON of chat.completion(.chunk) or text_completion objects for one request."""

    def __init__(self, *, chat: bool, model: str) -> None:
        self.chat = chat
        self.model = model
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def chunk(self, delta: Any, *, finish: str | None = None, extension: dict | None = None) -> dict[str, Any]:
        if self.chat:
            out = self._head("chat.completion.chunk")
            out["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        else:
            out = self._head("text_completion")
            out["choices"] = [{"index": 0, "text": delta, "logprobs": None, "finish_reason": finish}]
        if extension is not None:
            out["covey"] = extension
        return out

    def usage_chunk(self, r: AnswerResult, extension: dict) -> dict[str, Any]:
        out = self._head("chat.completion.chunk" if self.chat else "text_completion")
        out.update(choices=[], usage=usage(r), covey=extension)
        return out

    def whole(self, r: AnswerResult, extension: dict) -> dict[str, Any]:
        if self.chat:
            out = self._head("chat.completion")
            out["choices"] = [{"index": 0, "message": {"role": "assistant", "content": r.text}, "logprobs": None,
                               "finish_reason": finish_reason(r)}]
        else:
            out = self._head("text_completion")
            out["choices"] = [{"index": 0, "text": r.text, "logprobs": None, "finish_reason": finish_reason(r)}]
        out.update(usage=usage(r), covey=extension)
        return out


def usage(r: AnswerResult) -> dict[str, int]:
    return {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "total_tokens": r.prompt_tokens + r.completion_tokens}


def finish_reason(r: AnswerResult) -> str:
    last = next((a for a in reversed(r.attempts) if a.outcome == "answered"), None)
    return "length" if last is not None and last.finish is FinishReason.LENGTH else "stop"


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "covey"}


def sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"
