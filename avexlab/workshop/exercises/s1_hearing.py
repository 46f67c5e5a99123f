"""Section 1, what an encoder hears: the sample rate's limit, the taxon group it loses, nearest neighbours
in embedding space."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Exercise, Mistake, number, run_cases

NEAREST_ENCODER = "sl"


# ---------------------------------------------------------------------------------------- s1-nyquist
def _nyquist_reference(course: Any) -> float:
    return float(course.encoder(NEAREST_ENCODER).sample_rate) / 2.0


def _nyquist_solution(course: Any) -> int:
    sample_rate = course.encoder(NEAREST_ENCODER).sample_rate  # what the notebook prints
    return sample_rate // 2


# --------------------------------------------------------------------------------- s1-hidden-group
def group_share_above_8k(course: Any) -> dict[str, float]:
    """Per taxon group of the course's world: the share of its species with a call reaching above 8 kHz
    (the world's own physics, :attr:`avexlab.synth.taxonomy.Species.above_8k`)."""
    species = course.world().species
    groups = sorted({s.group for s in species})
    return {g: float(np.mean([s.above_8k for s in species if s.group == g])) for g in groups}


def _hidden_reference(course: Any) -> frozenset[str]:
    share = group_share_above_8k(course)
    top = max(share.values())
    return frozenset(g for g, v in share.items() if v == top)


def _hidden_solution(course: Any) -> str:
    # what the spectrograms at 16 and 48 kHz show: the group whose calls sit above the 8 kHz line
    return sorted(_hidden_reference(course))[0]


def _groups(course: Any) -> list[str]:
    return sorted({s.group for s in course.world().species})


# ---------------------------------------------------------------------------------------- s1-nearest
def nearest_inputs(course: Any) -> tuple[np.ndarray, list[int]]:
    """The embeddings the check runs ``nearest_clip`` on (the ``clf`` set's test clips, SL encoder) and the
    query rows."""
    emb = course.embeddings(NEAREST_ENCODER, "clf")
    x = emb.array()[(emb.manifest["split"] == "test").to_numpy()]
    n = x.shape[0]
    return x, sorted({0, n // 3, (2 * n) // 3, n - 1})


# A case where the dot product and the cosine disagree: row 1 is long, row 2 points the same way as row 0.
_LENGTHS_MATTER = np.array([[1.0, 0.0], [10.0, 10.0], [0.5, 0.05]], dtype=np.float32)


def _nearest_cases(course: Any) -> list[tuple[np.ndarray, int]]:
    x, rows = nearest_inputs(course)
    return [(x, i) for i in rows] + [(_LENGTHS_MATTER, 0)]


def _nearest_outputs(fn: Any, course: Any) -> tuple[Any, ...]:
    return tuple(
        None if o is None or o is Ellipsis else int(o) for o in run_cases(fn, _nearest_cases(course))
    )


def _nearest_reference(course: Any) -> tuple[int, ...]:
    from sklearn.metrics.pairwise import cosine_similarity

    out = []
    for x, i in _nearest_cases(course):
        sims = cosine_similarity(x[i : i + 1], x)[0]
        sims[i] = -np.inf
        out.append(int(np.argmax(sims)))
    return tuple(out)


def nearest_clip(embeddings, i):  # noqa: ANN001, ANN201 - written as a learner writes it
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    sims = x @ x[i]
    sims[i] = -np.inf
    return int(np.argmax(sims))


def _nearest_with_itself(embeddings, i):  # noqa: ANN001, ANN202
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return int(np.argmax(x @ x[i]))


def _nearest_by_dot(embeddings, i):  # noqa: ANN001, ANN202
    sims = embeddings @ embeddings[i]
    sims[i] = -np.inf
    return int(np.argmax(sims))


def _nearest_by_distance(embeddings, i):  # noqa: ANN001, ANN202
    d = np.linalg.norm(embeddings - embeddings[i], axis=1)
    d[i] = np.inf
    return int(np.argmin(d))


EXERCISES = (
    Exercise(
        id="s1-nyquist",
        section=1,
        title="The highest frequency an encoder hears",
        kind="value",
        prompt=(
            "The course's encoders take audio sampled at the rate printed above. What is the highest "
            "frequency, in Hz, that such a recording can hold? Type a number."
        ),
        hint="A sampled signal holds frequencies up to half its sampling rate (the Nyquist frequency).",
        reference=_nyquist_reference,
        solution=_nyquist_solution,
        outputs=lambda a, c: number(a),
        tol=0.5,
        mistakes=(
            Mistake(
                "That is the sampling rate itself. How many samples does one cycle of a wave need at least?",
                lambda c: c.encoder(NEAREST_ENCODER).sample_rate,
            ),
            Mistake(
                "That is where the synthetic world stops rendering calls (a safety margin of 0.45 x the rate), "
                "not the limit of the recording itself.",
                lambda c: 0.45 * c.encoder(NEAREST_ENCODER).sample_rate,
            ),
        ),
    ),
    Exercise(
        id="s1-hidden-group",
        section=1,
        title="Which animals does a 16 kHz encoder lose?",
        kind="choice",
        prompt=(
            "Compare the spectrograms of the bat clip at the course's rate and at 48 kHz, and listen to one "
            "clip of each taxon group. Which group has the largest share of species whose calls reach "
            "above 8 kHz, so that the course's encoders hear them only in part?"
        ),
        hint="Look for the group whose energy sits at the top of the 16 kHz spectrogram and above it at 48 kHz.",
        reference=_hidden_reference,
        solution=_hidden_solution,
        options=_groups,
        mistakes=(
            Mistake(
                "Some whistles of cetaceans do reach high, but most of their species call well below 8 kHz "
                "(moans, clicks). Which group echolocates?",
                lambda c: "cetaceans",
            ),
            Mistake(
                "Insects call high (3-20 kHz), yet most of their carriers stay under 8 kHz here. Look again at "
                "the 48 kHz spectrograms.",
                lambda c: "insects",
            ),
        ),
    ),
    Exercise(
        id="s1-nearest",
        section=1,
        title="The nearest clip in embedding space",
        kind="function",
        prompt=(
            "Write `nearest_clip(embeddings, i)`: the row index of the clip most similar to clip `i` by "
            "**cosine similarity**, never `i` itself. `embeddings` is a `[N, D]` numpy array. Listen to a "
            "clip and its nearest neighbour below: same species?"
        ),
        hint=(
            "Divide each row by its length (`np.linalg.norm(x, axis=1, keepdims=True)`), take the dot "
            "products with row `i`, set entry `i` to `-np.inf`, and return the `argmax`."
        ),
        reference=_nearest_reference,
        solution=lambda c: nearest_clip,
        outputs=_nearest_outputs,
        mistakes=(
            Mistake(
                "Your function returns `i` itself: every clip is most similar to itself. Exclude it before "
                "taking the maximum.",
                lambda c: _nearest_with_itself,
            ),
            Mistake(
                "You ranked by the plain dot product, so long vectors win. Cosine similarity divides by both "
                "lengths first.",
                lambda c: _nearest_by_dot,
            ),
            Mistake(
                "You ranked by Euclidean distance. The course (and the paper) rank by cosine similarity: "
                "normalise each row to length 1, then take dot products.",
                lambda c: _nearest_by_distance,
            ),
        ),
        stub=(
            "def nearest_clip(embeddings, i):\n"
            '    """Row index of the clip most cosine-similar to clip i (never i itself)."""\n'
            "    ...\n"
        ),
    ),
)
