"""The rough figures covey uses where nothing is measured, each defined once.

`WATTS_PER_CORE` is the default of `energy.watts_per_core` (the CPU-time estimate where no power
sensor exists); `CHARS_PER_TOKEN` stands in for a tokenizer that is not at hand (a remote model's
prompt, the retrieval budget). Both err on the cautious side.
"""

from __future__ import annotations

from typing import Final

WATTS_PER_CORE: Final = 3.5
"""Per-core CPU power (W) of the estimate: cloud-carbon-footprint's average vCPU at full load."""

CHARS_PER_TOKEN: Final = 3.5
"""Characters per token of English text with small-model tokenizers, rounded down so budgets keep a margin."""


def estimate_tokens(text: str) -> int:
    """Tokens in `text` by CHARS_PER_TOKEN, at least 1: for when the model's tokenizer is elsewhere."""
    return int(len(text) / CHARS_PER_TOKEN) + 1
