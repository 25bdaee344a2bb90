"""Token counts where no tokenizer is at hand: about 4 characters (or bytes) a token.

One rule for every place that must guess before a tokenizer is loaded or where none exists
(pacing bookings, budget reservations, batch queues, export bounds, the dry-run estimate), so
the guesses agree with each other and are easy to find and change.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 4


def estimate_tokens(length: int) -> int:
    """Tokens in a text of `length` characters (or bytes), rounded up."""
    return -(-length // CHARS_PER_TOKEN)
