"""Search by example at archive scale: an approximate (usearch HNSW) index against exact search.

A store of N synthetic windows x D (float16 on disk, imported with ``import_embeddings``: vectors drawn
around 256 cluster centres, the shape of real embeddings, or plain Gaussian, the worst case for any
graph index) is indexed; held-out queries from the same distribution (not in the store) are answered by
exact search (the library's chunked scan of the memory maps) and by the index at several
``expansion_search`` values. Reported: recall@10 against exact, time per query (batched, all cores; and
one query at a time, one thread), index build time, bytes on disk, peak memory.

    nice -n 10 python benchmarks/bench_agile_search.py --n 1000000 --dim 1024 --kind clustered --out /tmp/agile-bench
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from avexlab.agile.search import SearchIndex, exact_search
from avexlab.agile.store import import_embeddings

CENTRES = 256


def chunks(n: int, dim: int, kind: str, seed: int, chunk: int = 50_000):
    """Seeded ``[chunk, dim]`` float32 blocks: around shared centres (clustered) or plain Gaussian."""
    centres = np.random.default_rng(12345).standard_normal((CENTRES, dim)).astype(np.float32)
    for i, a in enumerate(range(0, n, chunk)):
        rng = np.random.default_rng([seed, i])
        m = min(chunk, n - a)
        x = rng.standard_normal((m, dim), dtype=np.float32)
        if kind == "clustered":
            x = centres[rng.integers(0, CENTRES, m)] + 0.5 * x
        yield x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--kind", choices=["clustered", "gaussian"], default="clustered")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--expansions", default="32,64,128,256")
    ap.add_argument("--connectivity", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("/tmp/agile-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the store (default: deleted at the end)")
    args = ap.parse_args()

    folder = args.out / f"search-{args.kind}-{args.n}x{args.dim}"
    shutil.rmtree(folder, ignore_errors=True)
    res: dict = {
        "n": args.n,
        "dim": args.dim,
        "kind": args.kind,
        "machine": platform.processor() or platform.machine(),
    }
    t0 = time.perf_counter()
    windows = pl.DataFrame(
        {
            "path": [f"rec{i // 3600:05d}.wav" for i in range(args.n)],
            "recording_id": [f"rec{i // 3600:05d}" for i in range(args.n)],
            "start_s": [float(i % 3600) for i in range(args.n)],
            "end_s": [float(i % 3600) + 1.0 for i in range(args.n)],
        }
    )
    store = import_embeddings(
        folder, windows, chunks(args.n, args.dim, args.kind, seed=0), encoder_name="synthetic",
        encoder_hash="0" * 64, sample_rate=16000, window_s=1.0, hop_s=1.0, dtype="float16", progress=True,
    )  # fmt: skip
    res["import_s"] = time.perf_counter() - t0
    res["store_bytes"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    t0 = time.perf_counter()
    index = SearchIndex.build(
        store, connectivity=args.connectivity, threads=0, recall_queries=100, progress=True
    )
    res["index_build_s"] = time.perf_counter() - t0
    res["index_bytes"] = SearchIndex.paths(store)[0].stat().st_size
    res["build_recall_at_10_store_rows"] = index.info["recall_at_10"]

    q = next(chunks(args.queries, args.dim, args.kind, seed=99, chunk=args.queries))
    t0 = time.perf_counter()
    exact, _ = exact_search(store, q, 10)
    res["exact_batched_ms_per_query"] = 1000 * (time.perf_counter() - t0) / len(q)
    t0 = time.perf_counter()
    for i in range(3):
        exact_search(store, q[i : i + 1], 10)
    res["exact_single_ms_per_query"] = 1000 * (time.perf_counter() - t0) / 3

    index = SearchIndex.open(store)
    rows = []
    for e in [int(x) for x in args.expansions.split(",")]:
        index.index.expansion_search = e
        t0 = time.perf_counter()
        approx, _ = index.search(q, 10, threads=0)
        batched = 1000 * (time.perf_counter() - t0) / len(q)
        t0 = time.perf_counter()
        for i in range(200):
            index.search(q[i : i + 1], 10, threads=1)
        single = 1000 * (time.perf_counter() - t0) / 200
        recall = float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.tolist(), exact.tolist(), strict=True)])
        )
        rows.append(
            {
                "expansion_search": e,
                "recall_at_10": recall,
                "batched_ms_per_query": batched,
                "single_ms_per_query_1_thread": single,
                "speedup_batched": res["exact_batched_ms_per_query"] / batched,
                "speedup_single": res["exact_single_ms_per_query"] / single,
            }
        )
    res["index"] = rows
    res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps(res, indent=2))
    print(pl.DataFrame(rows))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
