"""A spending cap: no request is sent whose worst-case cost could take the run past `budget_usd`.

Every request reserves its worst case before it goes out (the prompt's bytes / 4 in tokens,
plus max_tokens of completion, at the endpoint's price, halved in batch mode) and settles to
what the reply says it cost. A request that does not fit waits for those in flight to settle
(most finish well under max_tokens, which frees room); when nothing is in flight and it still
does not fit, the run stops with `BudgetExceeded`: what is stored stays, and a rerun with a
higher cap resumes. So a run ends at most one request's cost short of the cap, never over it
(up to a prompt longer in tokens than its bytes / 4 suggest).

The guard is a transport wrapper (`BudgetTransport`), so online and batch sending share it.
Money spent on a unit that never finished (a repair cut off by the stop) is counted here but
not in the run store, so a resumed run knows only the cost of stored records.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from .errors import UserError
from .pricing import PriceBook
from .records import Usage
from .tokens import estimate_tokens
from .transport import Reply, Transport

log = logging.getLogger(__name__)


class BudgetExceeded(UserError):
    """The next request could pass the cap: the run stopped cleanly and is resumable."""


class Budget:
    """Spent and reserved dollars of one run, shared by all of its clients."""

    def __init__(self, cap: float, spent: float = 0.0) -> None:
        self.cap = cap
        self.spent = spent
        self.reserved = 0.0
        self.in_flight = 0  # counted, not read off `reserved`: float sums never return to exactly 0
        self.stopped = False
        self._changed = asyncio.Condition()

    async def reserve(self, cost: float) -> None:
        """Hold `cost` for a request about to go out, or raise BudgetExceeded."""
        async with self._changed:
            while not self.stopped and self.spent + self.reserved + cost > self.cap:
                if self.in_flight == 0:
                    self.stopped = True
                    break
                await self._changed.wait()
            if self.stopped:
                self._changed.notify_all()
                raise BudgetExceeded(
                    f"budget reached: ${self.spent:,.4f} spent of ${self.cap:,.4f} and the next request "
                    f"may cost up to ${cost:,.4f}; everything finished is kept: raise budget_usd "
                    "(--budget) and rerun the same command to resume"
                )
            self.reserved += cost
            self.in_flight += 1

    async def settle(self, reserved: float, actual: float) -> None:
        async with self._changed:
            self.in_flight -= 1
            self.reserved = max(0.0, self.reserved - reserved) if self.in_flight else 0.0
            self.spent += actual
            self._changed.notify_all()


class BudgetTransport:
    """Wraps a transport: reserves each request's worst case, settles it to the reply's usage."""

    def __init__(self, inner: Transport, budget: Budget, prices: PriceBook) -> None:
        self.inner = inner
        self.where = inner.where
        self.budget = budget
        self.prices = prices

    async def __aenter__(self) -> BudgetTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def get(self, path: str, timeout: float) -> list[tuple[str, Reply]]:
        return await self.inner.get(path, timeout)

    def redact(self, text: str) -> str:
        return self.inner.redact(text)

    async def post(self, path: str, payload: bytes) -> Reply:
        body = json.loads(payload)
        model = str(body.get("model"))
        completion = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0) * int(
            body.get("n") or 1
        )
        worst = self._cost(
            model, Usage(prompt_tokens=estimate_tokens(len(payload)), completion_tokens=completion)
        )
        await self.budget.reserve(worst)
        actual = 0.0
        try:
            reply = await self.inner.post(path, payload)
            if reply.status == 200:
                actual = self._cost(model, _usage(reply.body))
            return reply
        finally:
            await asyncio.shield(self.budget.settle(worst, actual))

    def _cost(self, model: str, usage: Usage) -> float:
        return self.prices.priced(model, usage).cost


def _usage(body: bytes) -> Usage:
    try:
        usage: Any = json.loads(body).get("usage")
        return Usage(
            prompt_tokens=int(usage["prompt_tokens"]), completion_tokens=int(usage["completion_tokens"])
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return Usage()


def check_prices(models: list[str], prices: PriceBook, role: str) -> None:
    """A budget needs a price for every model it pays for; an unknown one is never $0."""
    for model in models:
        if prices.price(model) is None:
            raise UserError(
                f"budget_usd is set but no price is known for {role} model {model!r}: add "
                f"{role}.endpoint.prices.{model!r} = {{input = ..., output = ...}} (USD per million tokens)"
            )
