"""Training objectives: ``objective.loss(encoder, batch) -> (loss, logs)``, one module per ``objective.kind``.

* :mod:`~avexlab.train.objectives.base`: the :class:`Objective` contract (batch dict, logs, ``prepare``,
  ``after_step``, ``export``), the masking functions and the helpers over an encoder's SSL hooks;
* :mod:`~avexlab.train.objectives.supervised`: ``supervised``, multi-hot BCE with a linear head;
* :mod:`~avexlab.train.objectives.beats_ssl`: ``beats_ssl``, BEATs-style masked token prediction of a
  tokenizer's labels (:mod:`avexlab.train.tokenizer`);
* :mod:`~avexlab.train.objectives.eat_ssl`: ``eat_ssl``, EAT-style teacher-student;
* :mod:`~avexlab.train.objectives.masked_spec`: ``masked_spec``, masked-spectrogram reconstruction;
* :mod:`~avexlab.train.objectives.beats_tokenizer`: ``beats_tokenizer``, training BEATs' distilled tokenizer.

:func:`build_objective` builds the one a run config names.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from avexlab.errors import ConfigError
from avexlab.train.objectives.base import (
    MaskedPrediction,
    Objective,
    encode_visible,
    inverse_block_mask,
    random_keep,
    unwrap,
)
from avexlab.train.objectives.beats_ssl import BeatsSSLObjective
from avexlab.train.objectives.beats_tokenizer import BeatsTokenizerObjective
from avexlab.train.objectives.eat_ssl import EatSSLObjective, ema_decays
from avexlab.train.objectives.masked_spec import MaskedSpecObjective
from avexlab.train.objectives.supervised import SupervisedObjective

__all__ = [
    "BeatsSSLObjective",
    "BeatsTokenizerObjective",
    "EatSSLObjective",
    "MaskedPrediction",
    "MaskedSpecObjective",
    "Objective",
    "SupervisedObjective",
    "build_objective",
    "ema_decays",
    "encode_visible",
    "inverse_block_mask",
    "random_keep",
]


def build_objective(cfg: Any, encoder: nn.Module, num_classes: int) -> Objective:
    """The objective of ``cfg.objective.kind`` for ``encoder`` (``num_classes``: joint label space size)."""
    kind = cfg.objective.kind
    enc = unwrap(encoder)
    if kind == "supervised":
        return SupervisedObjective(int(enc.embed_dim), num_classes)
    if kind == "beats_ssl":
        return BeatsSSLObjective(encoder, cfg.objective.beats)
    if kind == "eat_ssl":
        return EatSSLObjective(encoder, cfg.objective.eat)
    if kind == "masked_spec":
        return MaskedSpecObjective(encoder, cfg.objective.masked_spec)
    if kind == "beats_tokenizer":
        return BeatsTokenizerObjective(encoder, cfg.objective.tokenizer)
    raise ConfigError(
        f"objective.kind: expected supervised|beats_ssl|eat_ssl|masked_spec|beats_tokenizer, found {kind!r}."
    )
