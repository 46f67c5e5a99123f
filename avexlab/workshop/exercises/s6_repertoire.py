"""Section 6, call types and individuals: which label k-means recovers, and individual identification
across recording sessions by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from .base import Exercise, Mistake, run_cases

ENCODER = "sl"
LABELS = ("call_type", "individual")


def repertoire_clips(course: Any) -> tuple[np.ndarray, pl.DataFrame]:
    """Every clip of the first repertoire dataset (clustering trains nothing, so all splits are used):
    ``(embeddings [N, D], manifest rows)`` for the section's encoder."""
    dataset = course.datasets("repertoire")[0]
    emb = course.embeddings(ENCODER, "repertoire", dataset)
    return emb.array(), emb.manifest


def label_nmi(course: Any) -> dict[str, float]:
    """NMI of k-means (the paper's protocol: K = number of labels, seed 42) against each of :data:`LABELS`."""
    from avexlab.evaluate.clustering import clustering_scores

    x, rows = repertoire_clips(course)
    return {
        c: float(clustering_scores(x, rows[c].to_list())["nmi"]) for c in LABELS if rows[c].n_unique() >= 2
    }


def _best_label_reference(course: Any) -> frozenset[str]:
    nmi = label_nmi(course)
    top = max(nmi.values())
    return frozenset(c for c, v in nmi.items() if v == top)


def _best_label_solution(course: Any) -> str:
    nmi = label_nmi(course)  # the table the notebook shows
    return max(sorted(nmi), key=lambda c: nmi[c])


# ---------------------------------------------------------------------------------- s6-cross-session
def session_cases(course: Any) -> list[tuple[np.ndarray, list[str], list[str]]]:
    """``(embeddings, individuals, splits)`` of each dataset of the ``individual`` set, for two encoders."""
    cases = []
    for key in (ENCODER, "baseline"):
        for dataset in course.datasets("individual"):
            emb = course.embeddings(key, "individual", dataset)
            cases.append((emb.array(), emb.manifest["individual"].to_list(), emb.manifest["split"].to_list()))
    return cases


def _session_outputs(fn: Any, course: Any) -> tuple[Any, ...]:
    return tuple(
        None if o is None or o is Ellipsis else float(o) for o in run_cases(fn, session_cases(course))
    )


def _session_reference(course: Any) -> tuple[float, ...]:
    from avexlab.evaluate.individual import individual_retrieval

    out = []
    for x, who, split in session_cases(course):
        rows = pl.DataFrame({"individual": who, "split": split})
        table = individual_retrieval(x, rows)
        out.append(float(table.filter(pl.col("mode") == "cross-session")["precision_at_1"][0]))
    return tuple(out)


def cross_session_precision_at_1(embeddings, individuals, splits):  # noqa: ANN001, ANN201
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    who, split = np.asarray(individuals), np.asarray(splits)
    query, gallery = split == "test", split == "train"
    sims = x[query] @ x[gallery].T
    nearest = sims.argmax(axis=1)
    return float(np.mean(who[gallery][nearest] == who[query]))


def _same_session(embeddings, individuals, splits):  # noqa: ANN001, ANN202
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    who, split = np.asarray(individuals), np.asarray(splits)
    t = split == "test"
    sims = x[t] @ x[t].T
    np.fill_diagonal(sims, -np.inf)
    return float(np.mean(who[t][sims.argmax(axis=1)] == who[t]))


def _gallery_with_val(embeddings, individuals, splits):  # noqa: ANN001, ANN202
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    who, split = np.asarray(individuals), np.asarray(splits)
    query, gallery = split == "test", split != "test"
    nearest = (x[query] @ x[gallery].T).argmax(axis=1)
    return float(np.mean(who[gallery][nearest] == who[query]))


EXERCISES = (
    Exercise(
        id="s6-best-label",
        section=6,
        title="What do the clusters follow?",
        kind="choice",
        prompt=(
            "k-means groups the clips of one species' repertoire. Do the clusters follow the **call "
            "type** or the **individual** that called? With the `sl` encoder on the first repertoire "
            "dataset (the defaults above), change the colouring of the map and read the NMI table, then "
            "pick the label the clusters recover best."
        ),
        hint="The label with the higher NMI in the table is the one k-means recovers best.",
        reference=_best_label_reference,
        solution=_best_label_solution,
        options=lambda c: list(LABELS),
    ),
    Exercise(
        id="s6-cross-session",
        section=6,
        title="Individuals across recording sessions",
        kind="function",
        prompt=(
            "Write `cross_session_precision_at_1(embeddings, individuals, splits)`: each **test** clip (a "
            "later recording session) is a query; rank the **training** clips (earlier sessions) by cosine "
            "similarity; return the fraction of queries whose most similar training clip is the same "
            "individual. `splits` holds `train`, `val` or `test` per clip."
        ),
        hint=(
            "Normalise the rows; `sims = x[test] @ x[train].T`; the nearest training clip of each query is "
            "`sims.argmax(axis=1)`; compare the individuals."
        ),
        reference=_session_reference,
        solution=lambda c: cross_session_precision_at_1,
        outputs=_session_outputs,
        tol=1e-9,  # a mean of 0/1 hits
        mistakes=(
            Mistake(
                "You searched among the test clips themselves (the same session): shared recording conditions "
                "make that easy. The task ranks the training sessions' clips.",
                lambda c: _same_session,
            ),
            Mistake(
                "Your gallery includes the validation clips. Rank only the training clips, as the paper's "
                "cross-session protocol does.",
                lambda c: _gallery_with_val,
            ),
        ),
        stub=(
            "def cross_session_precision_at_1(embeddings, individuals, splits):\n"
            '    """Fraction of test clips whose most cosine-similar training clip is the same individual."""\n'
            "    ...\n"
        ),
    ),
)
