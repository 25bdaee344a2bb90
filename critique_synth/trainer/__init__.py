"""The bundled trainer (the `train` extra): `train` runs CFT or SFT, `evaluate` scores models.

torch and transformers are imported only when these are called, so the base package works
without the extra and says which extra to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError
from ..lazy import functions_win
from .options import EvalOptions, TrainOptions

if TYPE_CHECKING:
    from rich.console import Console

    from .evaluate import EvalResult
    from .loop import TrainResult

__all__ = ["EvalOptions", "TrainOptions", "evaluate", "train"]


def train(options: TrainOptions) -> TrainResult:
    """Fine-tune a model with the CFT or SFT objective."""
    try:
        from .loop import train as run
    except ImportError as exc:
        raise UserError(
            f"critique-synth train needs the train extra ({exc.name} is missing): "
            "pip install 'critique-synth[train]'"
        ) from None
    return run(options)


def evaluate(options: EvalOptions, console: Console | None = None) -> EvalResult:
    """Score a model, local or served, on math problems against gold answers; progress on `console`."""
    from .evaluate import evaluate as run

    return run(options, console)


# trainer/evaluate.py is a module too: `critique_synth.trainer.evaluate` stays this function.
functions_win(__name__, ("evaluate",))
