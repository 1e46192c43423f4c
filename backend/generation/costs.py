"""Money in whole nanodollars (10⁻⁹ USD): exact integers MongoDB adds atomically, shown as
decimal strings. A call costs its tokens at the catalogue's per-million prices, rounded up."""

import math
from decimal import Decimal

from backend.config import ModelEntry

NANOS_PER_USD = 10**9


def call_cost(entry: ModelEntry, prompt_tokens: int, completion_tokens: int) -> int:
    per_token = Decimal(NANOS_PER_USD) / Decimal(10**6)  # nanodollars per token at $1 / M
    cost = (
        prompt_tokens * entry.input_usd_per_million
        + completion_tokens * entry.output_usd_per_million
    ) * per_token
    return math.ceil(cost)


def nanos(usd: Decimal) -> int:
    return math.floor(usd * NANOS_PER_USD)


def usd(amount: int) -> str:
    """`1250000` → `"0.00125"`: a decimal string, never a float."""
    text = format(Decimal(amount) / NANOS_PER_USD, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
