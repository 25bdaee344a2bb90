"""critique-synth: make critique fine-tuning (CFT) data from noisy responses and teacher critiques."""

__version__ = "0.1.0"

from .api import RunResult, agenerate, generate
from .config import RunConfig
from .errors import UserError
from .export import export
from .records import Critique, CritiqueRecord, Problem, Rejection, Response

__all__ = [
    "Critique",
    "CritiqueRecord",
    "EvalOptions",
    "Problem",
    "Rejection",
    "Response",
    "RunConfig",
    "RunResult",
    "TrainOptions",
    "UserError",
    "__version__",
    "agenerate",
    "evaluate",
    "export",
    "generate",
]
