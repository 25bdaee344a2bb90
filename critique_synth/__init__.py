"""critique-synth: make critique fine-tuning (CFT) data from noisy responses and teacher critiques.

The records, the config and the errors load at once; the entry points that pull in the HTTP
client, pyarrow, the Hub client or the trainer load on first use (PEP 562), so `import
critique_synth` and the CLI's `--help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ExportOptions, RunConfig
from .errors import UserError
from .lazy import lazy_attributes
from .records import Critique, CritiqueRecord, Problem, Rejection, Response
from .version import __version__

if TYPE_CHECKING:
    from .api import RunResult, agenerate, generate
    from .audit import AuditReport, audit
    from .export import ExportResult, export
    from .hub import push_to_hub
    from .trainer import EvalOptions, TrainOptions, evaluate, train

# name -> module (relative to this package) that defines it, imported on first access.
_LAZY = {
    "RunResult": ".api",
    "agenerate": ".api",
    "generate": ".api",
    "AuditReport": ".audit",
    "audit": ".audit",
    "ExportResult": ".export",
    "export": ".export",
    "push_to_hub": ".hub",
    "EvalOptions": ".trainer",
    "TrainOptions": ".trainer",
    "evaluate": ".trainer",
    "train": ".trainer",
}

__all__ = [
    "AuditReport",
    "Critique",
    "CritiqueRecord",
    "EvalOptions",
    "ExportOptions",
    "ExportResult",
    "Problem",
    "Rejection",
    "Response",
    "RunConfig",
    "RunResult",
    "TrainOptions",
    "UserError",
    "__version__",
    "agenerate",
    "audit",
    "evaluate",
    "export",
    "generate",
    "push_to_hub",
    "train",
]

lazy_attributes(__name__, _LAZY)
