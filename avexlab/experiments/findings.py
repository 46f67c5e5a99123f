"""The paper's findings as data: each one a paired comparison between grid cells, evaluated on a results
table and its per-item outcomes into ``reproduced``, ``contradicted`` or ``inconclusive``, with the
effect, its 95% interval and the number of pairs (``avexlab findings RESULTS.parquet``).

A finding pairs cells that differ in one factor only (same architecture, same paradigm, another data mix;
...), takes for each pair the difference of the two cells' column values, and averages it over the pairs
and over the columns it reads. The interval is the paired, stratified bootstrap of
:func:`avexlab.evaluate.stats.effect_interval`: the same drawn test clips and the same drawn training and
probe seeds on both sides of every pair. The pairs themselves are the design, not a sample: they are not
resampled.

Verdicts. A ``greater`` finding (the claim: effect > 0) is ``reproduced`` when the whole interval is
above 0, ``contradicted`` when it is below 0, ``inconclusive`` otherwise. A ``not_less`` finding (the
claim: the first side is not worse, i.e. effect > -margin) is ``reproduced`` when the interval's low end is
above ``-margin``, ``contradicted`` when its high end is below ``-margin``. The margins are stated with
each finding, before any result was seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from avexlab.errors import DataNotFoundError, EvaluationError, expected_found

__all__ = ["FINDINGS", "Finding", "evaluate_findings", "findings_prose", "load_grid_tables"]

PAPER_HEADLINE_COLUMNS: tuple[str, ...] = (
    "BEANS clf probe",
    "BEANS clf R-auc",
    "BEANS det probe",
    "BirdSet probe",
    "Indiv. ID probe",
    "Repertoire R-auc",
    "Repertoire C-nmi",
)

Pair = tuple[str, str]
Verdict = Literal["reproduced", "contradicted", "inconclusive", "not measured"]


@dataclass(frozen=True)
class Finding:
    """One claim of the paper as a paired comparison.

    Attributes:
        key: short identifier.
        statement: the claim, in words (as the paper or its tables make it).
        pairs: cells table -> ``(a, b)`` encoder pairs (a is the side the claim says is better).
        kind: ``greater`` (a > b) or ``not_less`` (a > b - margin).
        margin: the non-inferiority margin of a ``not_less`` finding (column units).
        columns: the columns averaged (names of :data:`avexlab.evaluate.tables.ANALYSIS_COLUMNS`).
        terms: instead of a plain difference, the per-pair terms ``(weight, side, column)`` with side 0 = a,
            1 = b (e.g. a difference of drops).
    """

    key: str
    statement: str
    pairs: Callable[[pl.DataFrame], list[Pair]]
    kind: Literal["greater", "not_less"] = "greater"
    margin: float = 0.0
    columns: tuple[str, ...] = PAPER_HEADLINE_COLUMNS
    terms: tuple[tuple[float, int, str], ...] | None = None


def _cells(results: pl.DataFrame) -> pl.DataFrame:
    """One row per encoder: ``encoder, architecture, mix, paradigm`` (grid results)."""
    need = ("encoder", "architecture", "mix", "paradigm")
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise EvaluationError(
            expected_found(
                "results table",
                f"a grid's table with columns {list(need)}",
                f"no {missing}",
                "Pass the results.parquet that `avexlab grid` writes.",
            )
        )
    return results.select(need).unique(subset=["encoder"], keep="first", maintain_order=True)


def _pairs_by(factor: str, a: str, b: str, **fixed: Sequence[str]) -> Callable[[pl.DataFrame], list[Pair]]:
    """Pairs of cells equal in every factor but ``factor`` (= ``a`` vs ``b``), restricted by ``fixed``."""
    keys = [k for k in ("architecture", "mix", "paradigm") if k != factor]

    def pairs(cells: pl.DataFrame) -> list[Pair]:
        c = cells
        for k, values in fixed.items():
            c = c.filter(pl.col(k).is_in(list(values)))
        left = c.filter(pl.col(factor) == a)
        right = c.filter(pl.col(factor) == b)
        joined = left.join(right, on=keys, suffix="_b")
        return list(zip(joined["encoder"].to_list(), joined["encoder_b"].to_list(), strict=True))

    return pairs


def _vs_twins(cells: pl.DataFrame) -> list[Pair]:
    trained = cells.filter(~pl.col("paradigm").is_in(["random-init", "existing"]))
    twins = cells.filter(pl.col("paradigm") == "random-init").select(
        "architecture", pl.col("encoder").alias("t")
    )
    j = trained.join(twins, on="architecture")
    return list(zip(j["encoder"].to_list(), j["t"].to_list(), strict=True))


_TRANSFORMERS = ("beats", "eat")
_DROP = (  # (focal R-auc - soundscape R-auc) of side b minus that of side a: a's drop is smaller
    (1.0, 1, "BEANS clf R-auc"),
    (-1.0, 1, "BEANS det R-auc cross-rec"),
    (-1.0, 0, "BEANS clf R-auc"),
    (1.0, 0, "BEANS det R-auc cross-rec"),
)

FINDINGS: tuple[Finding, ...] = (
    Finding(
        "training_helps",
        "Trained encoders beat their random initialisation (every cell against its architecture's twins)",
        _vs_twins,
    ),
    Finding(
        "bio_beats_general",
        "Bioacoustic training data beats general audio alone (general audio alone transfers poorly)",
        _pairs_by("mix", "bio", "general", paradigm=("sl", "ssl", "sl-ssl")),
    ),
    Finding(
        "all_not_below_bio",
        "Adding general audio to the bioacoustic data does not hurt (all >= bio, margin .01)",
        _pairs_by("mix", "all", "bio", paradigm=("sl", "ssl", "sl-ssl")),
        kind="not_less",
        margin=0.01,
    ),
    Finding(
        "all_beats_bio",
        "Bio + general beats bio alone (the paper: almost everywhere)",
        _pairs_by("mix", "all", "bio", paradigm=("sl", "ssl", "sl-ssl")),
    ),
    Finding(
        "slssl_beats_sl",
        "SSL then supervised post-training (SL-SSL) beats supervised training (SL)",
        _pairs_by("paradigm", "sl-ssl", "sl", architecture=_TRANSFORMERS),
    ),
    Finding(
        "slssl_beats_sl_equal_budget",
        "SL-SSL beats SL trained on as many examples as the SSL run and its post-training together",
        _pairs_by("paradigm", "sl-ssl", "sl-equal", architecture=_TRANSFORMERS),
    ),
    Finding(
        "sl_beats_ssl",
        "Supervised training beats self-supervised training alone (on linear probes)",
        _pairs_by("paradigm", "sl", "ssl", architecture=_TRANSFORMERS),
        columns=("BEANS clf probe", "BEANS det probe", "BirdSet probe", "Indiv. ID probe"),
    ),
    Finding(
        "effnet_competitive_bio",
        "EfficientNet-B0 is competitive with the transformers on bioacoustic data (SL on bio; margin .02)",
        lambda cells: [
            p
            for arch in _TRANSFORMERS
            for p in _pairs_by("architecture", "efficientnet", arch, mix=("bio",), paradigm=("sl",))(cells)
        ],
        kind="not_less",
        margin=0.02,
    ),
    Finding(
        "ssl_smaller_soundscape_drop",
        "SSL loses less than SL from focal clips to soundscape windows (retrieval ROC AUC, the query's own "
        "recording left out on soundscapes)",
        _pairs_by("paradigm", "ssl", "sl", architecture=_TRANSFORMERS),
        terms=_DROP,
    ),
    Finding(
        "slssl_keeps_ssl_robustness",
        "SL-SSL keeps SSL's robustness: it loses less than SL from focal clips to soundscape windows",
        _pairs_by("paradigm", "sl-ssl", "sl", architecture=_TRANSFORMERS),
        terms=_DROP,
    ),
)
"""The findings ``avexlab findings`` evaluates. The paper's "a stronger SSL backbone gives a stronger
post-trained model" is left out: it is a correlation across backbones, not a paired comparison, and the
grid has two SSL backbones per mix."""


def _verdict(f: Finding, lo: float, hi: float) -> Verdict:
    bound = 0.0 if f.kind == "greater" else -f.margin
    if lo > bound:
        return "reproduced"
    if hi < bound:
        return "contradicted"
    return "inconclusive"


def load_grid_tables(results: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A grid's ``results.parquet`` and the ``items.parquet`` beside it (the per-item outcomes the
    intervals resample)."""
    from avexlab.evaluate.report import items_path as items_of
    from avexlab.evaluate.report import load_results

    path = Path(results)
    table = load_results(path)
    items_path = items_of(path)
    if not items_path.is_file():
        raise DataNotFoundError(
            expected_found(
                "per-item outcomes",
                f"{items_path} beside the results table (intervals resample the test items)",
                "nothing there",
                "Run `avexlab grid` (it writes both), or copy items.parquet with results.parquet.",
            )
        )
    return table, pl.read_parquet(items_path)


def evaluate_findings(
    results: pl.DataFrame,
    items: pl.DataFrame,
    findings: Sequence[Finding] = FINDINGS,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    keep_in: str | Path | None = None,
) -> pl.DataFrame:
    """Each finding on a grid's tables: ``finding, statement, verdict, effect, ci_low, ci_high, n_pairs,
    kind, margin, columns`` (one row per finding; ``not measured`` when the table has no such pair).

    ``keep_in``: a grid's folder; the verdicts of the default :data:`FINDINGS` are kept in its ``analysis/``
    and reused while the tables, the settings and this code are unchanged
    (:func:`avexlab.evaluate.memo.memo_table`)."""
    from avexlab.evaluate.memo import memo_table

    settings = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    return memo_table(
        keep_in if findings is FINDINGS else None,  # another list's definitions are not in the key
        "findings",
        [results, items],
        settings,
        (
            "avexlab.experiments.findings",
            "avexlab.evaluate.stats",
            "avexlab.evaluate.tables",
            "avexlab.frames",
        ),
        lambda: _evaluate_findings(results, items, findings, **settings),
    )


def _evaluate_findings(
    results: pl.DataFrame,
    items: pl.DataFrame,
    findings: Sequence[Finding],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> pl.DataFrame:
    from avexlab.evaluate.stats import effect_interval

    cells = _cells(results)
    measured = set(items["encoder"].unique().to_list())
    rows = []
    for f in findings:
        pairs = [(a, b) for a, b in f.pairs(cells) if a in measured and b in measured]
        base: dict[str, Any] = {
            "finding": f.key,
            "statement": f.statement,
            "n_pairs": len(pairs),
            "kind": f.kind,
            "margin": f.margin,
            "columns": ", ".join(c for _, _, c in f.terms) if f.terms else ", ".join(f.columns),
        }
        if not pairs:
            rows.append({**base, "verdict": "not measured", "effect": None, "ci_low": None, "ci_high": None})
            continue
        needed = tuple(dict.fromkeys(c for _, _, c in f.terms)) if f.terms else f.columns
        columns = _measured_columns(items, pairs, needed)
        if not columns or (f.terms is not None and len(columns) < len(needed)):
            rows.append({**base, "verdict": "not measured", "effect": None, "ci_low": None, "ci_high": None})
            continue
        terms = []
        for a, b in pairs:
            if f.terms is not None:
                terms += [(w / len(pairs), (a, b)[side], col) for w, side, col in f.terms]
            else:
                w = 1.0 / (len(pairs) * len(columns))
                terms += [(s * w, e, c) for c in columns for s, e in ((1.0, a), (-1.0, b))]
        iv = effect_interval(items, terms, n_resamples=n_resamples, confidence=confidence, seed=seed)
        rows.append(
            {
                **base,
                "columns": ", ".join(c for _, _, c in f.terms) if f.terms else ", ".join(columns),
                "verdict": _verdict(f, iv.ci_low, iv.ci_high),
                "effect": iv.estimate,
                "ci_low": iv.ci_low,
                "ci_high": iv.ci_high,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "finding": pl.String,
            "statement": pl.String,
            "verdict": pl.String,
            "effect": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "n_pairs": pl.Int64,
            "kind": pl.String,
            "margin": pl.Float64,
            "columns": pl.String,
        },
    ).select(
        "finding",
        "verdict",
        "effect",
        "ci_low",
        "ci_high",
        "n_pairs",
        "statement",
        "kind",
        "margin",
        "columns",
    )


def _measured_columns(items: pl.DataFrame, pairs: Sequence[Pair], wanted: Sequence[str]) -> list[str]:
    """The columns of ``wanted`` that the items hold for every encoder of ``pairs``."""
    from avexlab.evaluate.tables import ANALYSIS_COLUMNS

    spec = {c[0]: c[1:] for c in ANALYSIS_COLUMNS}
    encoders = sorted({e for p in pairs for e in p})
    have = (
        items.filter(pl.col("encoder").is_in(encoders))
        .select("encoder", "task_family", "method", "metric")
        .unique()
    )
    out = []
    for col in wanted:
        fam, method, metric = spec[col]
        got = have.filter(
            (pl.col("task_family") == fam) & (pl.col("method") == method) & (pl.col("metric") == metric)
        )
        if set(got["encoder"].to_list()) == set(encoders):
            out.append(col)
    return out


def findings_prose(table: pl.DataFrame) -> str:
    """Markdown sentences generated from the verdicts (what a notebook shows above the numbers): one line
    per finding, its verdict, effect and interval, never written by hand."""
    lines = []
    for r in table.iter_rows(named=True):
        if r["verdict"] == "not measured":
            lines.append(
                f"- **{r['statement']}**: not measured (no such pair of cells, or not every column it reads, "
                "in this grid)."
            )
            continue
        bound = "0" if r["kind"] == "greater" else f"-{r['margin']:.2f}"
        lines.append(
            f"- **{r['statement']}**: **{r['verdict']}** on this grid. Effect {r['effect']:+.3f} "
            f"(95% interval {r['ci_low']:+.3f} to {r['ci_high']:+.3f}, {r['n_pairs']} pairs; the claim needs "
            f"the interval above {bound})."
        )
    return "\n".join(lines)
