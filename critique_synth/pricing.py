"""What a request costs: a built-in table of OpenAI list prices, overridden by `endpoint.prices`;
half of it on a Batch API endpoint (`endpoint.batch`).

A model with no known price costs *unknown*, not $0: its tokens are counted as `unpriced` in
the usage, and summaries say "cost unknown" rather than print a reassuring zero. Dated
snapshots (`gpt-4.1-2025-04-14`) take their family's price unless the table names them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .config import Price
from .records import Usage

# USD per million tokens (input, output), OpenAI standard tier list prices.
_TABLE: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.0),
    "gpt-5.1": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "gpt-5-chat-latest": (1.25, 10.0),
    "gpt-5-pro": (15.0, 120.0),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-2024-05-13": (5.0, 15.0),
    "gpt-4o-mini": (0.15, 0.6),
    "o1": (15.0, 60.0),
    "o1-mini": (1.1, 4.4),
    "o1-pro": (150.0, 600.0),
    "o3": (2.0, 8.0),
    "o3-mini": (1.1, 4.4),
    "o3-pro": (20.0, 80.0),
    "o4-mini": (1.1, 4.4),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-3.5-turbo": (0.5, 1.5),
}
BATCH_DISCOUNT = 0.5  # the Batch API charges half of the list price, input and output alike
DEFAULT_PRICES: dict[str, Price] = {name: Price(input=i, output=o) for name, (i, o) in _TABLE.items()}
_SNAPSHOT_RE = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class PriceBook:
    """Prices by model name, looked up once per model and kept."""

    def __init__(self, overrides: Mapping[str, Price], *, batch: bool = False) -> None:
        self.discount = BATCH_DISCOUNT if batch else 1.0
        self._prices: dict[str, Price] = {**DEFAULT_PRICES, **overrides}
        self._found: dict[str, Price | None] = {}

    def price(self, model: str) -> Price | None:
        if model not in self._found:
            self._found[model] = self._prices.get(model) or self._prices.get(_SNAPSHOT_RE.sub("", model))
        return self._found[model]

    def priced(self, model: str, usage: Usage) -> Usage:
        """`usage` with its cost, or with its tokens marked unpriced when the price is unknown."""
        price = self.price(model)
        if price is None:
            return usage.model_copy(update={"unpriced": usage.prompt_tokens + usage.completion_tokens})
        listed = usage.prompt_tokens * price.input + usage.completion_tokens * price.output
        cost = self.discount * listed / 1e6
        return usage.model_copy(update={"cost": cost})


def describe_cost(usage: Usage) -> str:
    """'$1.2345', 'cost unknown' (no price known), or '>= $1.2345 (N tokens unpriced)'."""
    if not usage.unpriced:
        return f"${usage.cost:,.4f}"
    if not usage.cost:
        return "cost unknown"
    return f">= ${usage.cost:,.4f} ({usage.unpriced:,} tokens unpriced)"
