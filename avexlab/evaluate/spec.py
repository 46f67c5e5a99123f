"""How to evaluate: one :class:`EvalSpec` object instead of keyword lists passed from function to function,
and the one resolution of a layer selection.

Layers are named in one vocabulary everywhere (CLI, Python API, results table): ``"last"``, ``"all"`` or a
sequence of indices (negative from the last). :func:`resolve_layers` turns a selection into the
non-negative, sorted indices that the results table's ``layer`` column holds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from avexlab.errors import EvaluationError, expected_found

__all__ = [
    "METHODS",
    "PROBE_RECIPES",
    "EvalSpec",
    "LayerSelection",
    "Method",
    "ProbeRecipe",
    "parse_layers",
    "resolve_layers",
]

Method = Literal["probe", "retrieval", "clustering"]
METHODS: tuple[Method, ...] = ("probe", "retrieval", "clustering")
ProbeRecipe = Literal["paper", "standardized"]
LayerSelection = Literal["last", "all"] | Sequence[int]

# name -> LinearProbe/MLPProbe keywords. "paper": the reference recipe exactly (raw embeddings, the given
# epochs). "standardized" (the default): each dimension standardised with the training split's mean and
# std and at least 500 optimiser steps. With raw features a linear probe at lr 1e-3 measures the SCALE of
# an embedding as much as its content, and 30 epochs of a small split are far from converged; on real
# datasets of several hundred training clips the two recipes differ only by the standardisation.
PROBE_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"standardize": False, "min_steps": 0},
    "standardized": {"standardize": True, "min_steps": 500},
}


def resolve_layers(selection: LayerSelection, num_layers: int) -> list[int]:
    """The sorted, non-negative layer indices of ``selection`` for an encoder of ``num_layers`` layers.

    ``"last"`` -> ``[num_layers - 1]``; ``"all"`` -> every layer; a sequence of indices (negative count
    from the last) -> those, deduplicated. An index outside the encoder is an EvaluationError."""
    n = max(1, int(num_layers))
    if isinstance(selection, str):
        if selection == "last":
            return [n - 1]
        if selection == "all":
            return list(range(n))
        raise EvaluationError(
            expected_found("layers", "'last', 'all' or layer indices", repr(selection), "Pick one.")
        )
    wanted = [int(x) for x in selection]
    bad = [x for x in wanted if not -n <= x < n]
    if bad or not wanted:
        raise EvaluationError(
            expected_found(
                "layers",
                f"indices in [-{n}, {n}) (the encoder has {n} layers)",
                f"{wanted}",
                "Pick existing layers, or 'last' / 'all'.",
            )
        )
    return sorted({x % n for x in wanted})


def parse_layers(text: str) -> LayerSelection:
    """A command-line layer selection: ``last``, ``all`` or comma-separated indices (``0,3,-1``)."""
    text = text.strip()
    if text in ("last", "all"):
        return text  # type: ignore[return-value]
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise EvaluationError(
            expected_found(
                "--layers", "'last', 'all' or comma-separated indices such as 0,3,-1", repr(text), "Fix it."
            )
        ) from None


@dataclass(frozen=True)
class EvalSpec:
    """Everything that decides how an encoder is evaluated on a suite (one object, passed whole).

    Attributes:
        methods: which of ``probe``, ``retrieval``, ``clustering`` to run.
        probe: ``linear`` (the paper's) or ``mlp``.
        probe_epochs: epochs of the probe (the paper: 30).
        probe_recipe: a key of :data:`PROBE_RECIPES` (``paper`` is the reference recipe exactly).
        probe_seeds: seeds of the probe's initialisation and batch order and of k-means; each seed gives
            its own rows (column ``probe_seed``). The paper uses one, 42.
        layers: ``"last"``, ``"all"`` or layer indices (:func:`resolve_layers`).
        pooling: ``mean`` / ``max`` over valid tokens, or ``cls``.
        batch_size, device: of the embedding pass (the probe and retrieval also run on ``device``).
        cache_dir: folder of the verified embedding cache (None: no cache).
        max_clips_per_split: evaluate at most this many clips of each split of each dataset (a
            label-stratified draw seeded by the first probe seed); None: every clip.
        progress: show progress bars.
    """

    methods: tuple[Method, ...] = METHODS
    probe: Literal["linear", "mlp"] = "linear"
    probe_epochs: int = 30
    probe_recipe: ProbeRecipe = "standardized"
    probe_seeds: tuple[int, ...] = (42,)
    layers: LayerSelection = "last"
    pooling: Literal["mean", "max", "cls"] = "mean"
    batch_size: int = 32
    device: str = "cpu"
    cache_dir: str | os.PathLike[str] | None = None
    max_clips_per_split: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "probe_seeds", tuple(int(s) for s in self.probe_seeds))
        if not isinstance(self.layers, str):
            object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))
        problems = []
        if self.probe_recipe not in PROBE_RECIPES:
            problems.append(("probe_recipe", f"one of {sorted(PROBE_RECIPES)}", repr(self.probe_recipe)))
        if self.probe not in ("linear", "mlp"):
            problems.append(("probe", "'linear' or 'mlp'", repr(self.probe)))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            problems.append(("methods", f"some of {list(METHODS)}", repr(self.methods)))
        if not self.probe_seeds:
            problems.append(("probe_seeds", "at least one seed", "none"))
        if self.probe_epochs < 1:
            problems.append(("probe_epochs", "an integer >= 1", repr(self.probe_epochs)))
        if self.max_clips_per_split is not None and self.max_clips_per_split < 1:
            problems.append(
                ("max_clips_per_split", "a positive number of clips or None", repr(self.max_clips_per_split))
            )
        if problems:
            what, expected, found = problems[0]
            raise EvaluationError(expected_found(f"EvalSpec.{what}", expected, found, "Fix the spec."))

    def replace(self, **changes: Any) -> EvalSpec:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def result_settings(self) -> dict[str, Any]:
        """The fields that determine the results (all but where and how the work runs: ``device``,
        ``cache_dir``, ``progress``): what a kept evaluation's key is made of."""
        return {
            k: v for k, v in dataclasses.asdict(self).items() if k not in ("cache_dir", "device", "progress")
        }

    @property
    def seed(self) -> int:
        """The first probe seed: the one that also draws ``max_clips_per_split`` subsets."""
        return self.probe_seeds[0]
