"""Evaluate an encoder (or precomputed embeddings) on a suite and return the tidy results table; pivot it
into the paper's headline table; report the focal -> soundscape (OOD) gap.

Results table (DESIGN.md), one row per (dataset, method, metric, layer):
``encoder, checkpoint, benchmark, dataset, task_family, domain, method, metric, value, n, seed, layer``
(``layer`` is an extra column: the non-negative layer index the embeddings came from).

Per dataset of a suite (each manifest holds ``train``/``val``/``test`` rows in ``split``):

- ``probe``: the linear probe (:class:`~avexlab.evaluate.probe.LinearProbe`) fitted on train,
  best epoch chosen on val, scored on test, with one of :data:`PROBE_RECIPES` (column ``probe_recipe``):
  ``"paper"`` is the reference recipe exactly (raw embeddings, 30 epochs); ``"standardized"`` (the
  default) standardises each dimension with the training split's mean and std and runs at least 500
  optimiser steps. Why a default that differs from the paper: with raw features a linear probe at lr 1e-3
  measures the SCALE of an embedding as much as its content (a random-init EfficientNet's features score
  chance, .125, on syn-beans-clf at any length; standardised, .30), and 30 epochs of a 120-clip split are
  120 steps, far from converged. Both matter for the small splits of the synthetic worlds and for the
  random-init baselines; on real datasets of 513+ training clips the two recipes differ only by the
  standardisation. Use ``probe_recipe="paper"`` to compare with the paper's numbers.
  Metrics: ``accuracy``, ``balanced_accuracy``, ``macro_f1`` for
  single-label suites and ``map`` (the paper's, all classes) for every suite, plus ``map_present``.
  The label space is the training split's (single-label; a test label outside it is an error) or the
  union over all splits (multi-label; classes without test positives count 0 in ``map``).
- ``retrieval``: ``roc_auc`` and ``precision_at_1`` on the test split (test-vs-test); for
  ``individual_id`` suites, test queries against the training gallery (train-vs-test, as the paper's
  cross-year individual ID). ``n`` is the number of queries averaged. Plus ``roc_auc_cross_recording``
  and ``precision_at_1_cross_recording`` (not individual ID): the same with every test clip of the
  query's own recording (its ``path``) left out of the ranking. Windows cut from one soundscape share its
  background and its species, so the paper's numbers reward finding the recording; the cross-recording
  ones do not, and are the fair focal-vs-soundscape comparison (a focal test set of one clip per file
  scores the same under both).
- ``clustering``: ``nmi``, ``ari``, ``v_measure`` of k-means on the test split (single-label suites only;
  clustering a multi-label window set has no single ground truth).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
import torch

from avexlab.errors import DataNotFoundError, EvaluationError, expected_found

from .clustering import clustering_scores
from .embed import Embeddings, align_embeddings, extract_embeddings, load_embeddings, resolve_encoder
from .metrics import (
    accuracy,
    balanced_accuracy,
    macro_f1,
    mean_average_precision,
    mean_average_precision_present,
)
from .probe import LinearProbe, MLPProbe
from .retrieval import retrieval_scores

__all__ = [
    "PAPER_COLUMNS",
    "PROBE_RECIPES",
    "RESULT_SCHEMA",
    "evaluate_embeddings",
    "evaluate_encoder_on_world",
    "evaluate_suite",
    "ood_report",
    "paper_table",
    "stratified_subsample",
]

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "encoder": pl.String(),
    "checkpoint": pl.String(),
    "benchmark": pl.String(),
    "dataset": pl.String(),
    "task_family": pl.String(),
    "domain": pl.String(),
    "method": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "n": pl.Int64(),
    "seed": pl.Int64(),
    "layer": pl.Int64(),
    "probe_recipe": pl.String(),
}

# name -> LinearProbe/MLPProbe keywords; see the module docstring.
PROBE_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"standardize": False, "min_steps": 0},
    "standardized": {"standardize": True, "min_steps": 500},
}
ProbeRecipe = Literal["paper", "standardized"]

# (column, task_family, method, metric): the paper's headline table, plus the repertoire NMI column of its
# data-mix ablation. Each cell is the mean over the family's datasets.
PAPER_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("BEANS clf probe", "classification", "probe", "accuracy"),
    ("BEANS clf R-auc", "classification", "retrieval", "roc_auc"),
    ("BEANS det probe", "detection", "probe", "map"),
    ("BirdSet probe", "birdset", "probe", "map"),
    ("Indiv. ID probe", "individual_id", "probe", "accuracy"),
    ("Repertoire R-auc", "repertoire", "retrieval", "roc_auc"),
    ("Repertoire C-nmi", "repertoire", "clustering", "nmi"),
)

Method = Literal["probe", "retrieval", "clustering"]
# the task families of the paper's benchmarks (PAPER_COLUMNS); individual_id retrieves test queries against
# a gallery of the training sessions, the others within the test split
TASK_FAMILIES: tuple[str, ...] = ("classification", "detection", "birdset", "individual_id", "repertoire")


class SuiteLike(Protocol):
    """What a suite provides (``avexlab.synth.world.Suite`` and real-data suites alike)."""

    name: str
    task_family: str
    multi_label: bool
    manifests: dict[str, pl.DataFrame]


def _domain(df: pl.DataFrame) -> str:
    vals = sorted(set(df["domain"].drop_nulls().to_list()))
    return vals[0] if len(vals) == 1 else "mixed"


def _single_labels(df: pl.DataFrame, what: str) -> np.ndarray:
    counts = df["labels"].list.len().to_numpy()
    if (counts != 1).any():
        raise EvaluationError(
            expected_found(
                f"{what} labels",
                "exactly one label per clip (a single-label suite)",
                f"{int((counts != 1).sum())} clips with {sorted(set(counts[counts != 1].tolist()))} labels",
                "Mark the suite multi_label, or fix the manifest.",
            )
        )
    return np.asarray(df["labels"].list.first().to_list(), dtype=object)


def evaluate_embeddings(
    emb: Embeddings,
    *,
    benchmark: str,
    dataset: str,
    task_family: str,
    multi_label: bool,
    methods: Sequence[Method] = ("probe", "retrieval", "clustering"),
    probe: Literal["linear", "mlp"] = "linear",
    probe_epochs: int = 30,
    probe_recipe: ProbeRecipe = "standardized",
    seed: int = 42,
    layers: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
) -> pl.DataFrame:
    """Evaluate the embeddings of one dataset (all splits in ``emb.manifest``); see the module docstring.

    ``probe_recipe`` (:data:`PROBE_RECIPES`) and ``probe_epochs`` set the probe's recipe and its epochs
    (``probe_recipe="paper"``, ``probe_epochs=30`` is the paper's). Returns rows of :data:`RESULT_SCHEMA`
    for each stored layer (or ``layers``).
    """
    if probe_recipe not in PROBE_RECIPES:
        raise EvaluationError(
            expected_found("probe_recipe", f"one of {sorted(PROBE_RECIPES)}", repr(probe_recipe), "Pick one.")
        )
    if emb.manifest is None:
        raise EvaluationError(
            expected_found(
                "embeddings", "a manifest (splits and labels)", "none", "Align them to a manifest."
            )
        )
    df = emb.manifest
    split = df["split"].to_numpy()
    tr, va, te = (split == s for s in ("train", "val", "test"))
    if not te.any():
        raise EvaluationError(
            expected_found(
                f"dataset {dataset!r}", "a test split", "no test rows", "Check the manifest's split."
            )
        )
    test_df = df.filter(pl.Series(te))
    rows: list[dict[str, Any]] = []
    base = {
        "encoder": str(emb.meta.get("encoder", "?")),
        "checkpoint": str(emb.meta.get("checkpoint", "?")),
        "benchmark": benchmark,
        "dataset": dataset,
        "task_family": task_family,
        "domain": _domain(test_df),
        "seed": int(seed),
    }

    def add(layer: int, method: str, metric: str, value: float, n: int) -> None:
        rows.append(
            {
                **base,
                "layer": layer,
                "method": method,
                "metric": metric,
                "value": float(value),
                "n": n,
                "probe_recipe": probe_recipe if method == "probe" else None,
            }
        )

    label_lists = df["labels"].to_list()
    for layer in layers if layers is not None else emb.layer_ids:
        x = emb.array(layer)
        if "probe" in methods:
            if not tr.any() or not va.any():
                raise EvaluationError(
                    expected_found(
                        f"dataset {dataset!r}", "train and val splits for the probe", "none", "Add them."
                    )
                )
            kw: dict[str, Any] = dict(
                epochs=probe_epochs, random_state=seed, device=device, **PROBE_RECIPES[probe_recipe]
            )
            cls = MLPProbe if probe == "mlp" else LinearProbe
            if multi_label:
                space = sorted({v for r in label_lists for v in r})
                index = {v: i for i, v in enumerate(space)}
                mh = np.zeros((df.height, len(space)), dtype=np.float32)
                r_idx = [i for i, r in enumerate(label_lists) for _ in r]
                c_idx = [index[v] for r in label_lists for v in r]
                mh[r_idx, c_idx] = 1.0
                model = cls(**kw, multi_label=True).fit(x[tr], mh[tr], x[va], mh[va])
                scores = model.decision_function(x[te])
                add(layer, "probe", "map", mean_average_precision(scores, mh[te].astype(bool)), int(te.sum()))
                if mh[te].any():
                    add(
                        layer,
                        "probe",
                        "map_present",
                        mean_average_precision_present(scores, mh[te]),
                        int(te.sum()),
                    )
            else:
                y = _single_labels(df, f"dataset {dataset!r}")
                model = cls(**kw).fit(x[tr], y[tr], x[va], y[va])
                y_te = model.encode_targets(y[te])  # raises on labels outside the probe's space
                scores = model.decision_function(x[te])
                pred = scores.argmax(axis=1)
                n = int(te.sum())
                add(layer, "probe", "accuracy", accuracy(y_te, pred), n)
                add(layer, "probe", "balanced_accuracy", balanced_accuracy(y_te, pred), n)
                add(layer, "probe", "macro_f1", macro_f1(y_te, pred), n)
                add(layer, "probe", "map", mean_average_precision(scores, y_te), n)
        if "retrieval" in methods:
            if task_family == "individual_id":
                sel = te | tr
                res = retrieval_scores(
                    x[sel], [label_lists[i] for i in np.flatnonzero(sel)], queries=te[sel], device=device
                )
            else:
                res = retrieval_scores(x[te], test_df["labels"].to_list(), device=device)
            if res["n_queries"]:
                add(layer, "retrieval", "roc_auc", res["roc_auc"], res["n_queries"])
                add(layer, "retrieval", "precision_at_1", res["precision_at_1"], res["n_queries"])
            if task_family != "individual_id":
                fair = retrieval_scores(
                    x[te], test_df["labels"].to_list(), groups=test_df["path"].to_list(), device=device
                )
                if fair["n_queries"]:
                    for metric in ("roc_auc", "precision_at_1"):
                        add(layer, "retrieval", f"{metric}_cross_recording", fair[metric], fair["n_queries"])
        if "clustering" in methods and not multi_label:
            y_test = _single_labels(test_df, f"dataset {dataset!r} test")
            if len(set(y_test.tolist())) >= 2:
                cl = clustering_scores(x[te], y_test, seed=seed)
                for metric in ("nmi", "ari", "v_measure"):
                    add(layer, "clustering", metric, cl[metric], int(te.sum()))
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def stratified_subsample(manifest: pl.DataFrame, max_clips_per_split: int, seed: int = 42) -> pl.DataFrame:
    """At most ``max_clips_per_split`` rows of each (dataset, split) of ``manifest``, label-stratified and
    deterministic by ``seed``; row order is kept and smaller groups are kept whole.

    Strata are the clip's sorted label set (``[]`` for unlabelled windows, ``a|b`` for several labels).
    Allocation is proportional and systematic: within a stratum of size ``c`` the rows are shuffled
    (seeded by ``seed``, dataset and split) and the ``r``-th gets the key ``(r + 0.5) / c``; the rows
    with the smallest keys are kept (ties broken by the shuffle). Each stratum thus keeps its
    proportional share ``c * max_clips_per_split / size`` rounded up or down (rare classes still get a
    clip when their share is at least one half). The draw depends on the labels and clip ids, not on the paths, so test
    sets that differ only in how they were rendered (a shift sweep) keep the same clips.
    """
    if max_clips_per_split < 1:
        raise EvaluationError(
            expected_found(
                "max_clips_per_split",
                "a positive number of clips (or None for every clip)",
                repr(max_clips_per_split),
                "Pass at least 1.",
            )
        )
    if manifest.height == 0:
        return manifest
    keep = np.zeros(manifest.height, dtype=bool)
    stratum = manifest["labels"].list.sort().list.join("|").fill_null("").to_numpy().astype(str)
    groups = manifest.select(pl.col("dataset").fill_null(""), pl.col("split").fill_null("")).with_row_index(
        "_row"
    )
    for (dataset, split), g in groups.group_by(["dataset", "split"], maintain_order=True):
        idx = g["_row"].to_numpy()
        if idx.size <= max_clips_per_split:
            keep[idx] = True
            continue
        tag = zlib.crc32(f"{dataset}/{split}".encode())
        rng = np.random.default_rng([int(seed), tag])
        # Order rows by clip id first so the draw does not depend on the manifest's row order.
        ids = manifest["clip_id"].gather(idx).to_numpy().astype(str)
        idx = idx[np.argsort(ids, kind="stable")]
        shuffled = idx[rng.permutation(idx.size)]
        strata = stratum[shuffled]
        _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
        # rank of each row within its stratum, in shuffled order
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(idx.size, dtype=np.int64)
        rank[order] = np.arange(idx.size) - np.repeat(starts, counts)
        key = (rank + 0.5) / counts[inverse]
        chosen = np.lexsort((np.arange(idx.size), key))[:max_clips_per_split]
        keep[shuffled[chosen]] = True
    return manifest.filter(pl.Series(keep))


def _suite_from_path(path: Path, task_family: str | None, multi_label: bool | None) -> SuiteLike:
    from dataclasses import dataclass

    from avexlab.data.manifest import read_manifest

    if not path.exists():
        raise DataNotFoundError(
            expected_found(
                "suite manifest",
                f"a manifest file at {path}",
                "nothing there",
                "Render the world first (`avexlab synth`), or point at the suite's .parquet.",
            )
        )
    family = task_family or "classification"
    if family not in TASK_FAMILIES:
        raise EvaluationError(
            expected_found("task family", f"one of {list(TASK_FAMILIES)}", repr(family), "Pick one of them.")
        )
    df = read_manifest(path)

    @dataclass
    class _FileSuite:
        name: str
        task_family: str
        multi_label: bool
        manifests: dict[str, pl.DataFrame]

    ml = bool((df["labels"].list.len() != 1).any()) if multi_label is None else multi_label
    datasets = df["dataset"].unique(maintain_order=True).to_list()
    return _FileSuite(
        path.stem,
        family,
        ml,
        {d: df.filter(pl.col("dataset") == d) for d in datasets},
    )


def evaluate_suite(
    encoder_or_embeddings: torch.nn.Module | Embeddings | str | os.PathLike[str],
    suite: SuiteLike | str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    layers: Sequence[int] | Literal["all"] = (-1,),
    pooling: Literal["mean", "max", "cls"] = "mean",
    methods: Sequence[Method] = ("probe", "retrieval", "clustering"),
    probe: Literal["linear", "mlp"] = "linear",
    probe_epochs: int = 30,
    probe_recipe: ProbeRecipe = "standardized",
    seed: int = 42,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    encoder_name: str | None = None,
    task_family: str | None = None,
    progress: bool = False,
    max_clips_per_split: int | None = None,
) -> pl.DataFrame:
    """Evaluate an encoder or precomputed embeddings on every dataset of ``suite``.

    Args:
        encoder_or_embeddings: an ``Encoder``; :class:`Embeddings` (e.g. from :func:`load_embeddings`);
            or a string: a checkpoint path, ``NAME:SIZE`` (random init), or an ``.npz``/``.parquet`` file
            of precomputed embeddings keyed by ``clip_id``.
        suite: a suite object (``name``, ``task_family``, ``multi_label``, ``manifests``), or a suite
            manifest file (``task_family`` then names its family; multi-label is inferred from the labels).
        root: data root of the manifests' relative paths.
        layers, pooling, batch_size, device, cache_dir: passed to :func:`extract_embeddings`.
        methods, probe, probe_epochs, probe_recipe, seed: see :func:`evaluate_embeddings`.
        encoder_name: the ``encoder`` column (default: the architecture name or the file's stem).
        max_clips_per_split: evaluate at most this many clips of each split of each dataset, a
            label-stratified draw seeded by ``seed`` (:func:`stratified_subsample`); the ``n`` column
            then counts the subset. ``None`` (default): every clip.

    Returns:
        The tidy results table (:data:`RESULT_SCHEMA`).
    """
    if isinstance(suite, str | os.PathLike):
        suite = _suite_from_path(Path(suite), task_family, None)
    source: Any = encoder_or_embeddings
    if isinstance(source, str | os.PathLike):
        p = Path(source)
        if p.suffix in (".npz", ".parquet") and p.exists():
            source = load_embeddings(p, name=encoder_name)
        else:
            source = resolve_encoder(str(source))
    frames = []
    for dataset, manifest in suite.manifests.items():
        if max_clips_per_split is not None:
            manifest = stratified_subsample(manifest, max_clips_per_split, seed)
        if isinstance(source, Embeddings):
            emb = align_embeddings(source, manifest)
        else:
            emb = extract_embeddings(
                source,
                manifest,
                root=root,
                layers=layers,
                pooling=pooling,
                batch_size=batch_size,
                device=device,
                cache_dir=cache_dir,
                progress=progress,
            )
        if encoder_name is not None:
            emb.meta["encoder"] = encoder_name
        frames.append(
            evaluate_embeddings(
                emb,
                benchmark=suite.name,
                dataset=dataset,
                task_family=suite.task_family,
                multi_label=suite.multi_label,
                methods=methods,
                probe=probe,
                probe_epochs=probe_epochs,
                probe_recipe=probe_recipe,
                seed=seed,
                device=device,
            )
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=RESULT_SCHEMA)


def evaluate_encoder_on_world(
    encoder: str,
    world: str | os.PathLike[str],
    *,
    suites: Sequence[str] | None = None,
    layers: Literal["last", "all"] = "last",
    device: str = "cpu",
    out: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> pl.DataFrame:
    """The core of ``avexlab evaluate``: evaluate ``encoder`` (checkpoint path, ``NAME:SIZE`` or an
    embeddings file) on the suites of a rendered synthetic world (default: all), and, with ``out``,
    write the table there (replacing earlier rows of the same encoder, checkpoint and benchmark)."""
    from avexlab.synth.world import World

    w = World.open(world)
    names = list(w.suites) if suites is None else list(suites)
    unknown = [s for s in names if s not in w.suites]
    if unknown:
        raise DataNotFoundError(
            expected_found("suite", f"one of {sorted(w.suites)}", f"{unknown}", "Pick a suite of this world.")
        )
    results = pl.concat(
        [
            evaluate_suite(
                encoder,
                w.suites[s],
                root=w.root,
                layers="all" if layers == "all" else (-1,),
                device=device,
                **kwargs,
            )
            for s in names
        ]
    )
    if out is not None:
        from .report import save_results

        save_results(results, out, append=True)
    return results


def _last_layer(results: pl.DataFrame) -> pl.DataFrame:
    if "layer" not in results.columns:
        return results
    return results.filter(pl.col("layer") == pl.col("layer").max().over("encoder", "checkpoint"))


def paper_table(results: pl.DataFrame) -> pl.DataFrame:
    """The paper-shaped table: one row per encoder (last layer; mean over datasets and seeds), columns
    as PAPER.md's headline table (:data:`PAPER_COLUMNS`); a column is null where nothing was measured."""
    res = _last_layer(results)
    encoders = res.select("encoder").unique(maintain_order=True)
    out = encoders
    for col, family, method, metric in PAPER_COLUMNS:
        cell = (
            res.filter(
                (pl.col("task_family") == family)
                & (pl.col("method") == method)
                & (pl.col("metric") == metric)
            )
            .group_by("encoder")
            .agg(pl.col("value").mean().alias(col))
        )
        out = out.join(cell, on="encoder", how="left")
    return out


def ood_report(results: pl.DataFrame) -> pl.DataFrame:
    """Focal vs soundscape, per encoder, method and metric (last layer; mean over datasets and seeds):
    ``focal``, ``soundscape`` and ``gap = soundscape - focal`` (negative = worse under the shift).
    Only metrics measured in both domains appear. When the results carry a shift knob (columns
    ``knob`` and ``knob_value``, as the synthetic world's knob sweep writes), the gap is also given per
    knob value."""
    res = _last_layer(results).filter(pl.col("domain").is_in(["focal", "soundscape"]))
    keys = ["encoder", "method", "metric"]
    if {"knob", "knob_value"} <= set(res.columns):
        keys += ["knob", "knob_value"]
    if res.height == 0:
        return pl.DataFrame(
            schema={
                **{k: pl.String for k in keys},
                "focal": pl.Float64,
                "soundscape": pl.Float64,
                "gap": pl.Float64,
            }
        )
    wide = (
        res.group_by([*keys, "domain"])
        .agg(pl.col("value").mean())
        .pivot(on="domain", index=keys, values="value")
    )
    if "focal" not in wide.columns or "soundscape" not in wide.columns:
        return wide.head(0).with_columns(pl.lit(None, pl.Float64).alias("gap"))
    return (
        wide.drop_nulls(["focal", "soundscape"])
        .with_columns((pl.col("soundscape") - pl.col("focal")).alias("gap"))
        .select([*keys, "focal", "soundscape", "gap"])
        .sort(keys)
    )
