"""Quality of the agile loop on the synthetic world, where every call is known.

The archive is the world's soundscapes (``syn-beans-det`` train/val/test and ``syn-birdset`` test scenes);
windows of ``--window-s`` every ``--hop-s`` are embedded once into a store. A window is a positive of a
species when at least half of one of its calls lies inside it, background-only when no call touches it.
Labels come from a simulated reviewer who answers from the annotations. Training windows come from the
train/val scenes (the pool); every figure is measured on the test scenes. Target classes: species with at
least 16 positive windows in the pool and 5 in the test scenes.

A. Background class. Per seed and class, 16 positives and 16 negatives (windows not touching the class)
   are drawn from the pool. Trained (one classifier, all classes) three ways: ``no background``: every
   negative is a negative of its class only; ``background``: negatives that hold no call at all are
   labelled background (a negative of every class and a positive of the background output), the others
   negatives of their class; ``background + listen``: as ``background`` plus 16 random pool windows
   labelled by the reviewer (a first listen). Per class, the threshold is the highest that keeps recall
   >= 0.8 on the test positives (oracle operating point); reported: the fraction of background-only test
   windows scored at or above it (FPR), per class and for "any class". Also the realistic thresholds
   (``threshold_for_recall`` on cross-validated scores of the labels) with the recall and FPR they give.

With ``--audible-db X`` a window is a positive only of calls received at an SNR of at least X dB (what a
reviewer would hear); windows touched only by fainter calls are neither positives nor background.

B. Active learning. Start: 2 positives per class + 10 random pool windows; then rounds of 10 windows
   chosen by margin, uncertainty or random from the pool, labelled from the truth; macro ROC AUC on the
   test windows after each round. Target: the AUC of a classifier trained on every pool window, minus
   .02. Reported per seed: labels each strategy needed to reach it, and the saving of margin against
   random (1 - margin / random), with a bootstrap interval over seeds.

    nice -n 10 python benchmarks/bench_agile_quality.py --preset quick --encoder results/grid/beats-bio-sl/seed-0 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import expit
from scipy.stats import bootstrap

from avexlab.agile.calibration import threshold_for_recall
from avexlab.agile.classifier import AgileClassifier, cross_val_logits, training_data
from avexlab.agile.labels import BACKGROUND, LabelTable, window_truth
from avexlab.agile.simulate import evaluate_against_truth, labels_to_reach, simulate_session
from avexlab.agile.store import build_store
from avexlab.synth import render_world


def _archive(world) -> pl.DataFrame:  # noqa: ANN001
    scenes = world.events.select("recording_id", "path", "split").unique().sort("recording_id")
    return pl.DataFrame(
        {
            "clip_id": scenes["recording_id"],
            "path": scenes["path"],
            "dataset": "soundscapes",
            "split": scenes["split"],
            "domain": "soundscape",
            "labels": [[]] * scenes.height,
            "start_s": 0.0,
            "end_s": world.config.scene_duration_s,
        },
        schema_overrides={"labels": pl.List(pl.String)},
    )


def part_a(store, truth, classes, pool, test, seed: int, k: int) -> list[dict]:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    pos_of = {c: truth["positives"].list.contains(c).to_numpy() for c in classes}
    touch_of = {c: truth["touched"].list.contains(c).to_numpy() for c in classes}
    bg = (truth["touched"].list.len() == 0).to_numpy()
    in_pool = np.zeros(store.n_rows, dtype=bool)
    in_pool[pool] = True
    picks = {}
    for c in classes:
        picks[c] = (
            rng.choice(np.flatnonzero(pos_of[c] & in_pool), k, replace=False),
            rng.choice(np.flatnonzero(~touch_of[c] & in_pool), k, replace=False),
        )
    listen = rng.choice(pool, k, replace=False)
    X_test = store.vectors(test)
    out = []
    for regime in ("no background", "background", "background + listen"):
        with tempfile.TemporaryDirectory() as tmp:
            table = LabelTable(Path(tmp) / "l.jsonl")
            for c in classes:
                p, n = picks[c]
                table.add(store, p.tolist(), c, annotator="reviewer")
                if regime == "no background":
                    table.add(store, n.tolist(), c, "negative", annotator="reviewer")
                else:
                    table.add(store, n[~bg[n]].tolist(), c, "negative", annotator="reviewer")
                    table.add(store, n[bg[n]].tolist(), BACKGROUND, annotator="reviewer")
            if regime == "background + listen":
                table.add_from_truth(store, listen.tolist(), truth, classes, annotator="reviewer")
            data = training_data(store, table, classes=classes)
            clf = AgileClassifier(seed=seed).fit(data.X, data.Y, data.classes, stats=store.stats())
            P = clf.predict_proba(X_test, calibrated=False)
            oof = expit(cross_val_logits(data, folds=5, seed=seed, stats=store.stats()))
        test_bg = bg[test]
        any_oracle = np.zeros(test.size, dtype=bool)
        any_cv = np.zeros(test.size, dtype=bool)
        for j, c in enumerate(classes):
            s, y = P[:, j], pos_of[c][test]
            thr = np.sort(s[y])[::-1][int(np.ceil(0.8 * y.sum())) - 1]  # highest threshold with recall >= .8
            cv = threshold_for_recall(oof[:, j], data.Y[:, j], 0.8, n_resamples=10, seed=seed)["threshold"]
            any_oracle |= s >= thr
            any_cv |= s >= cv
            out.append(
                {
                    "seed": seed,
                    "regime": regime,
                    "class": c,
                    "fpr_bg_oracle": float((s[test_bg] >= thr).mean()),
                    "fpr_bg_cv": float((s[test_bg] >= cv).mean()),
                    "recall_cv": float((s[y] >= cv).mean()),
                    "auc": evaluate_against_truth(P, truth, test, [c])[c],
                }
            )
        out.append(
            {
                "seed": seed,
                "regime": regime,
                "class": "ANY",
                "fpr_bg_oracle": float(any_oracle[test_bg].mean()),
                "fpr_bg_cv": float(any_cv[test_bg].mean()),
                "recall_cv": float("nan"),
                "auc": float("nan"),
            }
        )
    return out


def part_b(
    store, truth, classes, pool, test, seeds: int, rounds: int, batch: int
) -> tuple[pl.DataFrame, float]:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        table = LabelTable(Path(tmp) / "all.jsonl")
        table.add_from_truth(store, pool.tolist(), truth, classes)
        data = training_data(store, table, classes=classes)
        full = AgileClassifier().fit(data.X, data.Y, data.classes, stats=store.stats())
        full_auc = evaluate_against_truth(full.predict_proba(store.vectors(test)), truth, test, classes)[
            "macro"
        ]
    curves = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        start = [
            int(
                rng.choice(
                    np.intersect1d(np.flatnonzero(truth["positives"].list.contains(c).to_numpy()), pool), 1
                )[0]
            )
            for c in classes
            for _ in range(2)
        ]
        start += rng.choice(pool, 10, replace=False).tolist()
        for strategy in ("margin", "uncertainty", "random"):
            c = simulate_session(
                store, truth, classes, start_rows=start, strategy=strategy, batch=batch, rounds=rounds,
                pool_rows=pool, eval_rows=test, seed=seed,
            )  # fmt: skip
            curves.append(c.with_columns(pl.lit(strategy).alias("strategy"), pl.lit(seed).alias("seed")))
    return pl.concat(curves), full_auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--encoder", default="results/grid/beats-bio-sl/seed-0")
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--hop-s", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--positives", type=int, default=16, help="reviewed positives (and negatives) per class")
    ap.add_argument("--min-test", type=int, default=5, help="test positives a class needs to be a target")
    ap.add_argument(
        "--audible-db",
        type=float,
        default=None,
        help="positives only from calls received at >= this SNR (dB)",
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/agile-bench/quality"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    world = render_world(args.preset, args.world_seed)
    name = args.encoder.replace("/", "_").replace(":", "-")
    store = build_store(
        _archive(world), args.out / f"{args.preset}-{args.world_seed}-{name}-{args.window_s}-{args.hop_s}",
        args.encoder, window_s=args.window_s, hop_s=args.hop_s, batch_size=32,
    )  # fmt: skip
    build_s = time.perf_counter() - t0
    truth = window_truth(store.windows, world.events)
    if args.audible_db is not None:
        # A reviewer hears a call when its received SNR (the SNR at 10 m, spreading loss as rendered:
        # 20 log10(min(10 / d, 2)) dB) reaches audible_db; fainter calls count as neither positive nor
        # background (their windows are left out of both).
        ev = world.events.with_columns(
            (pl.col("snr_db") + 20 * (10.0 / pl.col("distance_m")).clip(upper_bound=2.0).log10()).alias(
                "received_db"
            )
        )
        heard = window_truth(store.windows, ev.filter(pl.col("received_db") >= args.audible_db))
        truth = heard.select("row", "positives").join(truth.select("row", "touched"), on="row")
    rid = store.windows["recording_id"]
    test = store.windows.filter(rid.str.contains("/test/"))["row"].to_numpy()
    pool = store.windows.filter(~rid.str.contains("/test/"))["row"].to_numpy()
    counts = (
        truth.with_columns(pl.Series("in_test", np.isin(truth["row"].to_numpy(), test)))
        .explode("positives")
        .drop_nulls("positives")
        .group_by("positives")
        .agg((~pl.col("in_test")).sum().alias("pool"), pl.col("in_test").sum().alias("test"))
    )
    classes = sorted(
        counts.filter((pl.col("pool") >= args.positives) & (pl.col("test") >= args.min_test))[
            "positives"
        ].to_list()
    )
    if not classes:
        raise SystemExit(
            f"no species has {args.positives} positive pool windows and {args.min_test} test ones"
        )
    bg = (truth["touched"].list.len() == 0).to_numpy()
    info = {
        "preset": args.preset,
        "encoder": args.encoder,
        "windows": store.n_rows,
        "pool_windows": int(pool.size),
        "test_windows": int(test.size),
        "test_background_windows": int(bg[test].sum()),
        "classes": len(classes),
        "store_build_s": round(build_s, 1),
        "audible_db": args.audible_db,
    }
    print(json.dumps(info, indent=2))

    a = pl.DataFrame(
        [r for s in range(args.seeds) for r in part_a(store, truth, classes, pool, test, s, args.positives)]
    )
    summary_a = (
        a.with_columns((pl.col("class") == "ANY").alias("any"))
        .group_by("regime", "any")
        .agg(
            pl.col("fpr_bg_oracle").mean().alias("fpr_bg_at_recall_0.8"),
            pl.col("fpr_bg_oracle").quantile(0.9).alias("p90"),
            pl.col("fpr_bg_cv").mean().alias("fpr_bg_cv_threshold"),
            pl.col("recall_cv").mean().alias("recall_cv_threshold"),
            pl.col("auc").mean().alias("auc"),
        )
        .sort("any", "regime")
    )
    print(summary_a)

    curves, full_auc = part_b(store, truth, classes, pool, test, args.seeds, args.rounds, args.batch)
    target = full_auc - 0.02
    rows = []
    for (strategy, seed), g in curves.group_by(["strategy", "seed"], maintain_order=True):
        rows.append(
            {
                "strategy": strategy,
                "seed": seed,
                "labels": labels_to_reach(g, target),
                "final_auc": g["macro_auc"][-1],
            }
        )
    reach = pl.DataFrame(rows)
    print(f"full-data macro AUC {full_auc:.4f}; target {target:.4f}")
    print(reach.sort("strategy", "seed"))
    cap = (
        int(curves["labels"].max()) + args.batch
    )  # a strategy that never reached it counts as beyond the budget
    m = (
        reach.filter(pl.col("strategy") == "margin")
        .sort("seed")["labels"]
        .fill_null(cap)
        .to_numpy()
        .astype(float)
    )
    r = (
        reach.filter(pl.col("strategy") == "random")
        .sort("seed")["labels"]
        .fill_null(cap)
        .to_numpy()
        .astype(float)
    )
    saving = 1 - m / r
    ci = bootstrap(
        (saving,),
        np.mean,
        n_resamples=2000,
        confidence_level=0.9,
        method="percentile",
        random_state=np.random.default_rng(0),
    ).confidence_interval
    result = {
        **info,
        "full_data_auc": full_auc,
        "target_auc": target,
        "labels_to_target": {
            s: reach.filter(pl.col("strategy") == s)["labels"].to_list()
            for s in ("margin", "uncertainty", "random")
        },
        "budget_cap": cap,
        "margin_saving_vs_random_mean": float(saving.mean()),
        "margin_saving_90ci": [float(ci.low), float(ci.high)],
        "fpr": summary_a.to_dicts(),
    }
    print(json.dumps(result, indent=2, default=str))
    curves.write_parquet(args.out / f"curves-{name}-{args.audible_db}.parquet")


if __name__ == "__main__":
    main()
