"""Loading a causal LM and its tokenizer: one place for the error message and the pad-token rule.

The trainer, the evaluator and the benchmarks all load models the same way, so a model that
trains also evaluates, and a name that cannot be loaded fails with the same one-line error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from ..errors import UserError

log = logging.getLogger(__name__)

_LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as the environment says now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    )


def check_source(name: str, what: str, repo_type: Literal["model", "dataset"]) -> bool:
    """Fail in one line, before any slow load, on a path that does not exist or a Hub id the
    Hub does not have (transformers and datasets retry for up to a minute, then blame the
    network). True where only the local cache can serve `name`: offline, or the Hub unreachable."""
    if Path(name).expanduser().exists():
        return False
    if name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).suffix in _LOCAL_SUFFIXES:
        raise UserError(f"{name}: no such {what} file or folder")
    if hub_offline():
        return True
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        HfApi().repo_info(name, repo_type=repo_type, timeout=10)
    except GatedRepoError:  # it exists; loading it asks for the token
        return False
    except (RepositoryNotFoundError, HFValidationError):
        raise UserError(
            f"{name}: no such {what} folder here, nor a {repo_type} of that name on the Hub"
        ) from None
    except Exception as exc:  # DNS, refused, timeout: the Hub client's many network errors
        log.debug("cannot reach the Hugging Face Hub for %s: %s", name, exc)
        return True
    return False


def load_tokenizer(name: str, padding_side: Literal["left", "right"] | None = None) -> Any:
    """The model's tokenizer, with a pad token (the end-of-sequence token where it has none)."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"padding_side": padding_side} if padding_side else {}
    if check_source(name, "model", "model"):
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        if kwargs.get("local_files_only"):
            raise UserError(
                f"cannot load model {name!r}: not a local folder and not in the Hugging Face cache, and the "
                "Hub is off (HF_HUB_OFFLINE) or cannot be reached"
            ) from None
        raise UserError(f"cannot load the tokenizer of model {name!r}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str, dtype: Any = None) -> Any:
    """A causal LM; `dtype` None keeps transformers' default (the checkpoint's or float32)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
    if check_source(name, "model", "model"):
        kwargs["local_files_only"] = True
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
