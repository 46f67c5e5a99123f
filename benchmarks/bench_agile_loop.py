"""One turn of the agile loop at archive scale: new labels -> retrain -> rescore every window -> next batch.

A store of N synthetic windows x D (float32, clustered vectors; classes are clusters, so there is
something to learn) starts with a few hundred labels. Each turn appends 10 new labels (as a reviewer of
the last batch would), then times: reading the labels and their embeddings (``training_data``), fitting
the classifier (``AgileClassifier.fit``, standardised by the store's statistics, computed once per store
and kept), scoring all N windows (``score_store``) and proposing the next batch (``next_batch``, margin).
The first turn of a process includes one-time costs (torch's first autograd pass, the statistics pass)
and is reported apart.

    nice -n 10 python benchmarks/bench_agile_loop.py --n 100000 --dim 768 --turns 6
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from avexlab.agile.active import next_batch
from avexlab.agile.classifier import AgileClassifier, training_data
from avexlab.agile.detect import score_store
from avexlab.agile.labels import BACKGROUND, LabelTable
from avexlab.agile.store import import_embeddings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--start-labels", type=int, default=300)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    n_clusters = 50
    centres = rng.standard_normal((n_clusters, args.dim)).astype(np.float32)
    cluster = rng.integers(0, n_clusters, args.n)
    x = centres[cluster] + 1.5 * rng.standard_normal((args.n, args.dim), dtype=np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="agile-loop-"))
    windows = pl.DataFrame(
        {
            "path": [f"rec{i // 3600:04d}.wav" for i in range(args.n)],
            "recording_id": [f"rec{i // 3600:04d}" for i in range(args.n)],
            "start_s": [float(i % 3600) for i in range(args.n)],
            "end_s": [float(i % 3600) + 1.0 for i in range(args.n)],
        }
    )
    store = import_embeddings(
        tmp / "store", windows, (x[i : i + 20000] for i in range(0, args.n, 20000)), encoder_name="synthetic",
        encoder_hash="0" * 64, sample_rate=16000, window_s=1.0, hop_s=1.0,
    )  # fmt: skip
    del x
    names = [f"class{c}" for c in range(args.classes)]  # clusters 0..C-1 are the classes; the rest background

    def oracle(table: LabelTable, rows: np.ndarray) -> None:
        for c, name in enumerate(names):
            table.add(store, rows[cluster[rows] == c].tolist(), name, annotator="bench")
        table.add(store, rows[cluster[rows] >= args.classes].tolist(), BACKGROUND, annotator="bench")

    table = LabelTable(tmp / "labels.jsonl")
    start = np.concatenate(
        [rng.choice(np.flatnonzero(cluster == c), 20, replace=False) for c in range(args.classes)]
        + [rng.choice(args.n, args.start_labels - 20 * args.classes, replace=False)]
    )
    oracle(table, np.unique(start))
    turns = []
    batch_rows = rng.choice(args.n, 10, replace=False)
    for turn in range(args.turns):
        oracle(table, batch_rows)  # the reviewer's answers to the last batch
        t = {"turn": turn}
        t0 = time.perf_counter()
        data = training_data(store, table, classes=names)
        t["read_labels_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        clf = AgileClassifier(hidden=args.hidden).fit(data.X, data.Y, data.classes, stats=store.stats())
        t["fit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        probs = score_store(store, clf)
        t["rescore_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = next_batch(store, probs, 10, strategy="margin", labelled=data.rows, seed=turn)
        t["next_batch_s"] = time.perf_counter() - t0
        t["total_s"] = sum(v for k, v in t.items() if k.endswith("_s"))
        t["labels"] = len(data)
        turns.append(t)
        batch_rows = batch["row"].to_numpy()
    df = pl.DataFrame(turns)
    warm = df.filter(pl.col("turn") > 0)
    out = {
        "n": args.n,
        "dim": args.dim,
        "hidden": args.hidden,
        "first_turn_total_s": float(df["total_s"][0]),
        "warm_median_total_s": float(warm["total_s"].median()),
        "warm_max_total_s": float(warm["total_s"].max()),
        "warm_median": {
            c: float(warm[c].median()) for c in ("read_labels_s", "fit_s", "rescore_s", "next_batch_s")
        },
    }
    print(df)
    print(json.dumps(out, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
