"""Evaluate an encoder (or precomputed embeddings) on a suite and return the tidy results table
(:data:`avexlab.evaluate.tables.RESULT_SCHEMA`, one row per dataset, method, metric, layer and probe seed).

How is set by one :class:`~avexlab.evaluate.spec.EvalSpec`; what by one
:class:`~avexlab.data.suite.Suite`. Per dataset of a suite (each manifest holds ``train``/``val``/``test``
rows in ``split``):

- ``probe``: the linear probe (:class:`~avexlab.evaluate.probe.LinearProbe`) fitted on train,
  best epoch chosen on val, scored on test, with one of :data:`~avexlab.evaluate.spec.PROBE_RECIPES`
  (column ``probe_recipe``). Metrics: ``accuracy``, ``balanced_accuracy``, ``macro_f1`` for single-label
  suites and ``map`` (the paper's, all classes) for every suite, plus ``map_present``. The label space is
  the training split's (single-label; a test label outside it is an error) or the union over all splits
  (multi-label; classes without test positives count 0 in ``map``).
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
from typing import Any

import numpy as np
import polars as pl
import torch

from avexlab.data.suite import Suite
from avexlab.errors import EvaluationError, expected_found

from .clustering import clustering_scores
from .embed import Embeddings, align_embeddings, extract_embeddings, load_embeddings, resolve_encoder
from .metrics import (
    accuracy,
    balanced_accuracy,
    macro_f1,
    mean_average_precision,
    mean_average_precision_present,
)
from .probe import MLPProbe, fit_linear_probes
from .retrieval import retrieval_scores
from .spec import PROBE_RECIPES, EvalSpec
from .stats import item_rows
from .tables import RESULT_SCHEMA

__all__ = ["evaluate_embeddings", "evaluate_suite", "evaluate_suites", "stratified_subsample"]


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


def evaluate_embeddings(
    emb: Embeddings,
    *,
    benchmark: str,
    dataset: str,
    task_family: str,
    multi_label: bool,
    spec: EvalSpec | None = None,
    items: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Evaluate the embeddings of one dataset (all splits in ``emb.manifest``), every layer they hold;
    see the module docstring. Returns rows of :data:`~avexlab.evaluate.tables.RESULT_SCHEMA`; the probe
    and clustering give one set of rows per seed of ``spec.probe_seeds``.

    ``items``: when a list is given, the per-item outcomes behind the metrics that
    :mod:`avexlab.evaluate.stats` resamples (:data:`~avexlab.evaluate.stats.ITEM_METRICS`) are appended to
    it as :data:`~avexlab.evaluate.stats.ITEM_SCHEMA` frames (``train_seed`` null: the caller knows it)."""
    spec = spec or EvalSpec()
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
    }

    def keep(layer: int, seed: int | None, method: str, metric: str, **arrays: Any) -> None:
        if items is not None:
            items.append(
                item_rows(
                    {**base, "layer": layer, "probe_seed": seed, "train_seed": None}, method, metric, **arrays
                )
            )

    def add(layer: int, seed: int | None, method: str, metric: str, value: float, n: int) -> None:
        rows.append(
            {
                **base,
                "probe_seed": seed,
                "layer": layer,
                "method": method,
                "metric": metric,
                "value": float(value),
                "n": n,
                "probe_recipe": spec.probe_recipe if method == "probe" else None,
            }
        )

    label_lists = df["labels"].to_list()
    methods = spec.methods
    for layer in emb.layer_ids:
        x = emb.array(layer)
        if "probe" in methods:
            if not tr.any() or not va.any():
                raise EvaluationError(
                    expected_found(
                        f"dataset {dataset!r}", "train and val splits for the probe", "none", "Add them."
                    )
                )
            _probe(x, df, label_lists, (tr, va, te), multi_label, spec, dataset, layer, add, keep)
        if "retrieval" in methods:
            per_query = items is not None
            if task_family == "individual_id":
                sel = te | tr
                res = retrieval_scores(
                    x[sel],
                    [label_lists[i] for i in np.flatnonzero(sel)],
                    queries=te[sel],
                    device=spec.device,
                    per_query=per_query,
                )
            else:
                res = retrieval_scores(
                    x[te], test_df["labels"].to_list(), device=spec.device, per_query=per_query
                )
            if res["n_queries"]:
                add(layer, None, "retrieval", "roc_auc", res["roc_auc"], res["n_queries"])
                add(layer, None, "retrieval", "precision_at_1", res["precision_at_1"], res["n_queries"])
                keep(layer, None, "retrieval", "roc_auc", value=res.get("query_roc_auc"))
                keep(layer, None, "retrieval", "precision_at_1", value=res.get("query_hit"))
            if task_family != "individual_id":
                fair = retrieval_scores(
                    x[te],
                    test_df["labels"].to_list(),
                    groups=test_df["path"].to_list(),
                    device=spec.device,
                    per_query=per_query,
                )
                if fair["n_queries"]:
                    for metric, per in (("roc_auc", "query_roc_auc"), ("precision_at_1", "query_hit")):
                        name = f"{metric}_cross_recording"
                        add(layer, None, "retrieval", name, fair[metric], fair["n_queries"])
                        keep(layer, None, "retrieval", name, value=fair.get(per))
        if "clustering" in methods and not multi_label:
            y_test = _single_labels(test_df, f"dataset {dataset!r} test")
            if len(set(y_test.tolist())) >= 2:
                for seed in spec.probe_seeds:
                    cl = clustering_scores(x[te], y_test, seed=seed, assignments=True)
                    for metric in ("nmi", "ari", "v_measure"):
                        add(layer, seed, "clustering", metric, cl[metric], int(te.sum()))
                    keep(layer, seed, "clustering", "nmi", label=cl["labels"], cluster=cl["clusters"])
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def _probe(
    x: np.ndarray,
    df: pl.DataFrame,
    label_lists: list[list[str]],
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    multi_label: bool,
    spec: EvalSpec,
    dataset: str,
    layer: int,
    add: Any,
    keep: Any,
) -> None:
    """Fit one probe per seed of ``spec.probe_seeds`` on train (best epoch on val) and add their test
    metrics (and, through ``keep``, the per-item outcomes of accuracy and mAP). Linear probes of several
    seeds train together (:func:`~avexlab.evaluate.probe.fit_linear_probes`)."""
    tr, va, te = splits
    kw: dict[str, Any] = dict(
        epochs=spec.probe_epochs, device=spec.device, **PROBE_RECIPES[spec.probe_recipe]
    )
    n = int(te.sum())
    if multi_label:
        space = sorted({v for r in label_lists for v in r})
        index = {v: i for i, v in enumerate(space)}
        mh = np.zeros((df.height, len(space)), dtype=np.float32)
        r_idx = [i for i, r in enumerate(label_lists) for _ in r]
        c_idx = [index[v] for r in label_lists for v in r]
        mh[r_idx, c_idx] = 1.0
        models = _fit_probes(spec, x[tr], mh[tr], x[va], mh[va], {**kw, "multi_label": True})
        for seed, model in zip(spec.probe_seeds, models, strict=True):
            scores = model.decision_function(x[te])
            add(layer, seed, "probe", "map", mean_average_precision(scores, mh[te].astype(bool)), n)
            keep(layer, seed, "probe", "map", scores=scores.astype(np.float32), targets=mh[te].astype(bool))
            if mh[te].any():
                add(layer, seed, "probe", "map_present", mean_average_precision_present(scores, mh[te]), n)
        return
    y = _single_labels(df, f"dataset {dataset!r}")
    models = _fit_probes(spec, x[tr], y[tr], x[va], y[va], kw)
    for seed, model in zip(spec.probe_seeds, models, strict=True):
        y_te = model.encode_targets(y[te])  # raises on labels outside the probe's space
        scores = model.decision_function(x[te])
        pred = scores.argmax(axis=1)
        add(layer, seed, "probe", "accuracy", accuracy(y_te, pred), n)
        keep(layer, seed, "probe", "accuracy", value=(pred == y_te).astype(np.float64), label=y_te)
        add(layer, seed, "probe", "balanced_accuracy", balanced_accuracy(y_te, pred), n)
        add(layer, seed, "probe", "macro_f1", macro_f1(y_te, pred), n)
        add(layer, seed, "probe", "map", mean_average_precision(scores, y_te), n)


def _fit_probes(spec: EvalSpec, x: Any, y: Any, xv: Any, yv: Any, kw: dict[str, Any]) -> list[Any]:
    """One fitted probe per seed of ``spec.probe_seeds``."""
    if spec.probe == "mlp":
        return [MLPProbe(**kw, random_state=s).fit(x, y, xv, yv) for s in spec.probe_seeds]
    return fit_linear_probes(x, y, xv, yv, spec.probe_seeds, **kw)


def evaluate_suite(
    encoder_or_embeddings: torch.nn.Module | Embeddings | str | os.PathLike[str],
    suite: Suite,
    spec: EvalSpec | None = None,
    *,
    encoder_name: str | None = None,
    items: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Evaluate an encoder or precomputed embeddings on every dataset of ``suite``.

    Args:
        encoder_or_embeddings: an ``Encoder``; :class:`Embeddings` (e.g. from :func:`load_embeddings`);
            or a string: a checkpoint path, ``NAME:SIZE`` (random init), or an ``.npz``/``.parquet`` file
            of precomputed embeddings keyed by ``clip_id`` (every layer the file holds is evaluated).
        suite: the :class:`~avexlab.data.suite.Suite` (its ``root`` resolves relative paths; a user's
            manifest becomes one with :meth:`Suite.from_manifest`).
        spec: how to evaluate (:class:`~avexlab.evaluate.spec.EvalSpec`; default: the paper's methods,
            the standardized probe recipe, probe seed 42, the last layer).
        encoder_name: the ``encoder`` column (default: the architecture name or the file's stem).
        items: a list that collects the per-item outcomes (:func:`evaluate_embeddings`).

    Returns:
        The tidy results table (:data:`~avexlab.evaluate.tables.RESULT_SCHEMA`).
    """
    spec = spec or EvalSpec()
    if not isinstance(suite, Suite):
        raise EvaluationError(
            expected_found(
                "suite",
                "an avexlab.data.suite.Suite",
                type(suite).__name__,
                "Wrap a manifest with Suite.from_manifest(path, task_family=..., root=...).",
            )
        )
    source: Any = encoder_or_embeddings
    if isinstance(source, str | os.PathLike):
        p = os.fspath(source)
        if p.endswith((".npz", ".parquet")) and os.path.exists(p):
            source = load_embeddings(p, name=encoder_name)
        else:
            source = resolve_encoder(p)
    frames = []
    for dataset, manifest in suite.manifests.items():
        if spec.max_clips_per_split is not None:
            manifest = stratified_subsample(manifest, spec.max_clips_per_split, spec.seed)
        if isinstance(source, Embeddings):
            emb = align_embeddings(source, manifest)
        else:
            emb = extract_embeddings(
                source,
                manifest,
                root=suite.root,
                layers=spec.layers,
                pooling=spec.pooling,
                batch_size=spec.batch_size,
                device=spec.device,
                cache_dir=spec.cache_dir,
                progress=spec.progress,
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
                spec=spec,
                items=items,
            )
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=RESULT_SCHEMA)


def _audio_key(manifest: pl.DataFrame, root: str | None) -> pl.Series:
    """One key per clip naming its audio: root, path, start and end (clips of several suites cut from the
    same audio share it)."""
    return manifest.select(
        pl.concat_str(
            [
                pl.lit(root or ""),
                pl.col("path"),
                pl.col("start_s").cast(pl.String).fill_null("-"),
                pl.col("end_s").cast(pl.String).fill_null("-"),
            ],
            separator="|",
        )
    ).to_series()


def evaluate_suites(
    encoder: torch.nn.Module | str | os.PathLike[str],
    suites: Sequence[Suite],
    spec: EvalSpec | None = None,
    *,
    encoder_name: str | None = None,
    items: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """:func:`evaluate_suite` on several suites, embedding every distinct clip once: suites that share
    audio (the synthetic world's BirdSet training clips are its classification clips) share the
    embeddings. Rows as :func:`evaluate_suite` gives them, suite after suite."""
    spec = spec or EvalSpec()
    if isinstance(encoder, str | os.PathLike):
        encoder = resolve_encoder(os.fspath(encoder))
    parts: list[tuple[Suite, str, pl.DataFrame]] = []
    for suite in suites:
        for dataset, manifest in suite.manifests.items():
            if spec.max_clips_per_split is not None:
                manifest = stratified_subsample(manifest, spec.max_clips_per_split, spec.seed)
            parts.append((suite, dataset, manifest))
    by_root: dict[str | None, list[pl.DataFrame]] = {}
    for suite, _, manifest in parts:
        by_root.setdefault(suite.root, []).append(
            manifest.with_columns(_audio_key(manifest, suite.root).alias("_key"))
        )
    embedded: dict[str, tuple[Embeddings, dict[str, int]]] = {}
    for root, frames in by_root.items():
        union = pl.concat(frames, how="diagonal_relaxed").unique("_key", keep="first", maintain_order=True)
        union = union.with_columns(pl.col("_key").alias("clip_id")).drop("_key")
        emb = extract_embeddings(
            encoder,
            union,
            root=root,
            layers=spec.layers,
            pooling=spec.pooling,
            batch_size=spec.batch_size,
            device=spec.device,
            cache_dir=spec.cache_dir,
            progress=spec.progress,
        )
        embedded[root or ""] = (emb, {k: i for i, k in enumerate(emb.clip_ids)})
    frames_out = []
    for suite, dataset, manifest in parts:
        emb, index = embedded[suite.root or ""]
        rows = [index[k] for k in _audio_key(manifest, suite.root).to_list()]
        meta = dict(emb.meta)
        if encoder_name is not None:
            meta["encoder"] = encoder_name
        sub = Embeddings(
            manifest["clip_id"].to_list(), {k: v[rows] for k, v in emb.layers.items()}, manifest, meta
        )
        frames_out.append(
            evaluate_embeddings(
                sub,
                benchmark=suite.name,
                dataset=dataset,
                task_family=suite.task_family,
                multi_label=suite.multi_label,
                spec=spec,
                items=items,
            )
        )
    return pl.concat(frames_out) if frames_out else pl.DataFrame(schema=RESULT_SCHEMA)
