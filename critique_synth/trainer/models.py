"""Loading a causal LM and its tokenizer: one place for the error message and the pad-token rule.

The trainer, the evaluator and the benchmarks all load models the same way, so a model that
trains also evaluates, and a name that cannot be loaded fails with the same one-line error.
"""

from __future__ import annotations

from typing import Any, Literal

from ..errors import UserError


def load_tokenizer(name: str, padding_side: Literal["left", "right"] | None = None) -> Any:
    """The model's tokenizer, with a pad token (the end-of-sequence token where it has none)."""
    from transformers import AutoTokenizer

    kwargs = {"padding_side": padding_side} if padding_side else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the tokenizer of model {name!r}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str, dtype: Any = None) -> Any:
    """A causal LM; `dtype` None keeps transformers' default (the checkpoint's or float32)."""
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        return AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load model {name!r}: {exc}") from None


def load(
    name: str, dtype: Any = None, padding_side: Literal["left", "right"] | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer); the tokenizer first, as it fails faster on a wrong name."""
    tokenizer = load_tokenizer(name, padding_side)
    return load_model(name, dtype), tokenizer
