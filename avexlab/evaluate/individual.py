"""Individual identification across recording sessions: retrieval in the two modes that tell session cues
from identity, and the per-species probe (notebook 06)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from avexlab.errors import EvaluationError, expected_found

from .embed import Embeddings
from .retrieval import retrieval_scores
from .spec import EvalSpec
from .suites import evaluate_embeddings

__all__ = ["individual_id_scores", "individual_retrieval"]


def individual_retrieval(
    embeddings: np.ndarray, manifest: pl.DataFrame, *, device: str = "cpu"
) -> pl.DataFrame:
    """Individual identification by retrieval, in the two modes that tell session cues from identity.

    Args:
        embeddings: ``[N, D]`` float32, one row per ``manifest`` row (one species' dataset).
        manifest: rows with ``split`` (``train``/``val``/``test``) and ``individual``; in the synthetic
            world's ``syn-individual`` suite (unseen sessions) the test rows are a later session.
        device: torch device of the retrieval computation.

    Returns:
        Two rows ``mode, roc_auc, precision_at_1, n_queries``:
        ``cross-session`` = test queries ranked against the training gallery (the paper's protocol:
        another session, another year); ``same session`` = test queries ranked against the other test
        clips (shared recording conditions can inflate it).
    """
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != manifest.height:
        raise EvaluationError(
            expected_found(
                "embeddings",
                f"shape [{manifest.height}, D] (one row per manifest row)",
                f"shape {list(x.shape)}",
                "Embed the same manifest you pass.",
            )
        )
    for col in ("split", "individual"):
        if col not in manifest.columns or manifest[col].null_count():
            raise EvaluationError(
                expected_found(
                    "manifest",
                    f"a '{col}' value on every row",
                    f"columns {manifest.columns}",
                    "Use syn-individual.",
                )
            )
    split = manifest["split"].to_numpy()
    who = manifest["individual"].to_numpy()
    te, tr = split == "test", split == "train"
    if not te.any() or not tr.any():
        raise EvaluationError(
            expected_found(
                "manifest", "train and test rows", f"splits {sorted(set(split))}", "Use syn-individual."
            )
        )
    sel = te | tr
    cross = retrieval_scores(x[sel], who[sel].tolist(), queries=te[sel], device=device)
    same = retrieval_scores(x[te], who[te].tolist(), device=device)
    return pl.DataFrame(
        [
            {"mode": "cross-session", **{k: cross[k] for k in ("roc_auc", "precision_at_1", "n_queries")}},
            {"mode": "same session", **{k: same[k] for k in ("roc_auc", "precision_at_1", "n_queries")}},
        ],
        schema={
            "mode": pl.String,
            "roc_auc": pl.Float64,
            "precision_at_1": pl.Float64,
            "n_queries": pl.Int64,
        },
    )


def individual_id_scores(embeddings: Mapping[str, Embeddings], spec: EvalSpec | None = None) -> pl.DataFrame:
    """Individual identification per species: the linear probe (trained on the training sessions,
    best epoch on val, scored on the held-out session) and retrieval in both modes of
    :func:`individual_retrieval`.

    Args:
        embeddings: one :class:`~avexlab.evaluate.embed.Embeddings` per dataset (one species each, e.g.
            the ``syn-individual`` suite's manifests embedded with
            :func:`~avexlab.evaluate.embed.extract_embeddings`), each with its manifest.
        spec: the probe's recipe, epochs, seeds and device (:class:`~avexlab.evaluate.spec.EvalSpec`;
            ``probe_recipe="paper"`` is the paper's). Each probe seed gives its own probe rows.

    Returns:
        Tidy rows ``dataset, species, n_individuals, chance, method, mode, metric, value, n``: ``method``
        ``probe`` (metrics ``accuracy``, ``balanced_accuracy``; mode ``cross-session``) or ``retrieval``
        (``roc_auc``, ``precision_at_1``; both modes). ``chance`` = 1 / number of individuals (the
        accuracy of guessing; retrieval ROC AUC's chance is 0.5).
    """
    spec = spec or EvalSpec()
    device = spec.device
    frames = []
    for dataset, emb in embeddings.items():
        m = emb.manifest
        if m is None:
            raise EvaluationError(
                expected_found(f"embeddings of {dataset!r}", "a manifest", "none", "Embed a manifest.")
            )
        species = m["species"][0] if "species" in m.columns else dataset
        n_ind = int(m["individual"].n_unique()) if "individual" in m.columns else 0
        probe = evaluate_embeddings(
            emb,
            benchmark="individual-id",
            dataset=dataset,
            task_family="individual_id",
            multi_label=False,
            spec=spec.replace(methods=("probe",)),
        ).filter(pl.col("metric").is_in(["accuracy", "balanced_accuracy"]))
        probe = probe.select("method", pl.lit("cross-session").alias("mode"), "metric", "value", "n")
        ret = individual_retrieval(emb.array(-1), m, device=device).unpivot(
            on=["roc_auc", "precision_at_1"], index=["mode", "n_queries"], variable_name="metric"
        )
        ret = ret.select(
            pl.lit("retrieval").alias("method"), "mode", "metric", "value", pl.col("n_queries").alias("n")
        )
        frames.append(
            pl.concat([probe, ret]).select(
                pl.lit(dataset).alias("dataset"),
                pl.lit(species).alias("species"),
                pl.lit(n_ind, pl.Int64).alias("n_individuals"),
                pl.lit(1.0 / n_ind if n_ind else None, pl.Float64).alias("chance"),
                pl.all(),
            )
        )
    if not frames:
        raise EvaluationError(
            expected_found("embeddings", "at least one dataset", "none", "Pass the suite's embeddings.")
        )
    return pl.concat(frames)
