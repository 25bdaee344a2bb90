"""The training loss: summed next-token cross-entropy over the labelled (target) positions.

The output layer runs only at labelled positions, which matters for CFT, where the prompt
(question + solution) is often longer than the critique, and for large vocabularies. That
shortcut skips the model class's own forward, so it is taken only where the logits are the
output layer's result as is, or where this module reproduces what the forward does to them
(checked against transformers' modeling code). A model whose config carries any other logit
post-processing gets its own full forward: slower, never a wrong loss. The same attribute
can mean different things (`logits_scaling` divides in Granite, multiplies in HyperCLOVA X),
so the reproduction is keyed by model type, not by attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .data import IGNORE

# Config attributes by which a transformers model post-processes its output layer's logits.
POSTPROCESS_ATTRS = (
    "final_logit_softcapping",
    "logit_scale",
    "logits_scaling",
    "logits_soft_cap",
    "lm_head_multiplier",
    "output_multiplier",
)


def _softcap(config: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    cap = float(config.final_logit_softcapping)
    return lambda logits: torch.tanh(logits / cap) * cap


def _scale(config: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    scale = float(config.logit_scale)
    return lambda logits: logits * scale


def _divide(config: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    scaling = float(config.logits_scaling)
    return lambda logits: logits / scaling


# model_type -> what its ForCausalLM forward does to the output layer's result.
_REPRODUCED: dict[str, Callable[[Any], Callable[[torch.Tensor], torch.Tensor]]] = {
    "gemma2": _softcap,
    "gemma3_text": _softcap,
    "vaultgemma": _softcap,
    "cohere": _scale,
    "cohere2": _scale,
    "granite": _divide,
    "granitemoe": _divide,
    "granitemoeshared": _divide,
    "granitemoehybrid": _divide,
}

Postprocess = Callable[[torch.Tensor], torch.Tensor] | None


def logit_postprocess(config: Any) -> tuple[bool, Postprocess]:
    """(labelled positions only?, what to apply to those logits): how TargetLoss computes logits."""
    present = [a for a in POSTPROCESS_ATTRS if getattr(config, a, None) is not None]
    if not present:
        return True, None
    reproduce = _REPRODUCED.get(getattr(config, "model_type", ""))
    if reproduce is None or set(present) - {"final_logit_softcapping", "logit_scale", "logits_scaling"}:
        return False, None
    return True, reproduce(config)


class TargetLoss(nn.Module):
    """Sum of next-token cross-entropy over labelled positions, equal to the model's own logits'.

    A module (not a function) so DDP/FSDP wrap it and its forward is the one they hook.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.labelled_only, self.postprocess = logit_postprocess(base.config)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        targets = labels[:, 1:]
        mask = targets != IGNORE
        if self.labelled_only:
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            logits = base.get_output_embeddings()(hidden[:, :-1][mask]).float()
            if self.postprocess is not None:
                logits = self.postprocess(logits)
        else:
            full = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            logits = full[:, :-1][mask].float()
        return nn.functional.cross_entropy(logits, targets[mask], reduction="sum")
