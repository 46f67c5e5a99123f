"""Section 2, probing vs retrieval vs clustering: K of the clustering protocol, precision@1 by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from .base import Exercise, Mistake, number, run_cases

DATASET = "syn-clf-songbirds"
ENCODER = "sl"


def test_rows(course: Any) -> pl.DataFrame:
    """The test clips of the section's dataset (the ``clf`` set)."""
    return course.manifest("clf", DATASET).filter(pl.col("split") == "test")


# --------------------------------------------------------------------------------------- s2-kmeans-k
def _k_reference(course: Any) -> int:
    # ground truth: the world's own species of those clips (not the manifest's label column)
    clips = set(test_rows(course)["clip_id"].to_list())
    suite = course.world().suites["syn-beans-clf"].manifests[DATASET]
    return int(suite.filter(pl.col("clip_id").is_in(clips))["species"].n_unique())


def _k_solution(course: Any) -> int:
    labels = test_rows(course)["labels"].list.first()  # what the notebook shows
    return len(set(labels.to_list()))


# ---------------------------------------------------------------------------------- s2-precision-at-1
def p1_inputs(course: Any, key: str = ENCODER) -> tuple[np.ndarray, list[str]]:
    """``(embeddings [N, D], labels [N])`` of the section's test clips for encoder ``key``."""
    emb = course.embeddings(key, "clf", DATASET)
    te = (emb.manifest["split"] == "test").to_numpy()
    return emb.array()[te], emb.manifest.filter(pl.Series(te))["labels"].list.first().to_list()


# Three pairs, one of them long: by cosine each clip's nearest is its partner (P@1 = 1); by the dot
# product the long pair attracts every query (P@1 = 1/3). Every label has two clips, so every query counts.
_LENGTHS_MATTER = (
    np.array([[1.0, 0.1], [1.0, 0.15], [10.0, 9.0], [9.0, 10.0], [0.1, 1.0], [0.12, 1.0]], dtype=np.float32),
    ["a", "a", "b", "b", "c", "c"],
)


def _p1_cases(course: Any) -> list[tuple[np.ndarray, list[str]]]:
    return [p1_inputs(course, ENCODER), p1_inputs(course, "baseline"), _LENGTHS_MATTER]


def _p1_outputs(fn: Any, course: Any) -> tuple[Any, ...]:
    return tuple(None if o is None or o is Ellipsis else float(o) for o in run_cases(fn, _p1_cases(course)))


def _p1_reference(course: Any) -> tuple[float, ...]:
    from avexlab.evaluate.retrieval import retrieval_scores

    return tuple(float(retrieval_scores(x, y)["precision_at_1"]) for x, y in _p1_cases(course))


def precision_at_1(embeddings, labels):  # noqa: ANN001, ANN201 - written as a learner writes it
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    labels = np.asarray(labels)
    return float(np.mean(labels[nearest] == labels))


def _p1_with_itself(embeddings, labels):  # noqa: ANN001, ANN202
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    nearest = (x @ x.T).argmax(axis=1)
    labels = np.asarray(labels)
    return float(np.mean(labels[nearest] == labels))


def _p1_by_dot(embeddings, labels):  # noqa: ANN001, ANN202
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    labels = np.asarray(labels)
    return float(np.mean(labels[sims.argmax(axis=1)] == labels))


def _p1_count(embeddings, labels):  # noqa: ANN001, ANN202
    return float(precision_at_1(embeddings, labels) * len(labels))


EXERCISES = (
    Exercise(
        id="s2-kmeans-k",
        section=2,
        title="K for the clustering protocol",
        kind="value",
        prompt=(
            f"The paper clusters the test clips of a dataset with k-means and scores the clusters against "
            f"the labels. K is not tuned: it is set from the data. For the test clips of `{DATASET}` shown "
            f"above, which K does the protocol use? Move the slider to see how NMI changes with K, then type "
            f"the protocol's K."
        ),
        hint="K is the number of distinct classes among the clips being clustered (the test split).",
        reference=_k_reference,
        solution=_k_solution,
        outputs=lambda a, c: number(a),
        mistakes=(
            Mistake(
                "That is the number of test clips: one cluster per clip groups nothing. K counts classes.",
                lambda c: test_rows(c).height,
            ),
            Mistake(
                "That is the number of taxon groups in the world. The dataset holds one group's species: "
                "count the classes of its test clips.",
                lambda c: len({s.group for s in c.world().species}),
            ),
            Mistake(
                "That counts every species in the world. Cluster only this dataset's test clips: count their "
                "classes.",
                lambda c: len(c.world().species),
            ),
        ),
    ),
    Exercise(
        id="s2-precision-at-1",
        section=2,
        title="Retrieval precision@1 by hand",
        kind="function",
        prompt=(
            "Write `precision_at_1(embeddings, labels)`: for every clip, find the most cosine-similar "
            "**other** clip; return the fraction of clips whose nearest clip has the same label. "
            "`embeddings` is `[N, D]`, `labels` a list of N strings. Compare with the library's number "
            "printed above."
        ),
        hint=(
            "Normalise the rows, compute the `[N, N]` similarity matrix `x @ x.T`, put `-np.inf` on its "
            "diagonal (`np.fill_diagonal`), take `argmax(axis=1)`, then compare labels."
        ),
        reference=_p1_reference,
        solution=lambda c: precision_at_1,
        outputs=_p1_outputs,
        tol=1e-9,  # a mean of 0/1 hits: exact unless a near-tie flips a hit
        mistakes=(
            Mistake(
                "You get 1.0: each clip found itself. Put `-inf` on the diagonal of the similarity matrix.",
                lambda c: _p1_with_itself,
            ),
            Mistake(
                "You ranked by the plain dot product: long embedding vectors attract every query. Normalise "
                "the rows first (cosine similarity).",
                lambda c: _p1_by_dot,
            ),
            Mistake(
                "You return the number of hits; the metric is their fraction (divide by the number of clips).",
                lambda c: _p1_count,
            ),
        ),
        stub=(
            "def precision_at_1(embeddings, labels):\n"
            '    """Fraction of clips whose most cosine-similar other clip has the same label."""\n'
            "    ...\n"
        ),
    ),
)
