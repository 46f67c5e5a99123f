"""Retrieval ROC AUC and clustering: avexlab's chunked implementation against the reference code's method.

The reference (``avex`` 1.4.0) computes retrieval ROC AUC with a Python loop over queries that calls
``sklearn.metrics.roc_auc_score`` on each query's similarity row. This script times both on the same
synthetic embeddings (Gaussian class clusters, ``N x 512`` float32), prints both values, the speed ratio
and the peak resident memory of each. Each measurement runs in a fresh spawned process so that peak RSS
(``ru_maxrss``) belongs to that measurement alone.

When the full reference loop would take too long (``--ref-queries``, default 2000 queries), it runs on a
subset of queries and its time is extrapolated linearly to all N queries (each query costs the same:
one similarity row of N and one ROC AUC over N); the printed "ref value" is then the mean over that
subset, compared with avexlab's value over the SAME subset (``queries=subset``, gallery = all rows).

``--ours-queries`` does the same for avexlab (each block of queries costs the same), for sizes whose
full run would not fit a session on a small CPU; the peak memory is then the real one (it does not
grow with the number of queries, only with the gallery).

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_retrieval.py --sizes 1000,10000
    .venv/bin/python benchmarks/bench_retrieval.py --sizes 100000 --device cuda
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_retrieval.py --sizes 100000 --ours-queries 1000 --ref-queries 200
    .venv/bin/python benchmarks/bench_retrieval.py --sizes 10000 --clustering
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_retrieval.py --sizes 10000 --floor

``--floor`` also times the float32 similarity matmuls alone (every query against every row, in blocks):
every exact method needs them, so reference time / matmul time bounds the speed-up any implementation
can reach on that device.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from typing import Any

import numpy as np


def make_data(n: int, d: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, d]`` float32 embeddings in ``n_classes`` overlapping Gaussian clusters, and their labels."""
    rng = np.random.default_rng(seed)
    centres = 0.15 * rng.normal(size=(n_classes, d)).astype(np.float32)
    labels = rng.integers(0, n_classes, n)
    x = centres[labels] + rng.normal(size=(n, d)).astype(np.float32)
    return x.astype(np.float32), labels


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _ours(args: dict[str, Any]) -> dict[str, Any]:
    import torch

    from avexlab.evaluate.retrieval import retrieval_scores

    x, y = make_data(args["n"], args["d"], args["k"], args["seed"])
    base = _peak_mib()
    dev = args["device"]
    n = args["n"]
    ours_q = args["ours_queries"]
    partial = ours_q is not None and ours_q < n
    t0 = time.perf_counter()
    if partial:  # every block of queries costs the same: time a subset, extrapolate to all N queries
        full = retrieval_scores(x, y, queries=np.arange(ours_q), gallery=np.arange(n), device=dev)
    else:
        full = retrieval_scores(x, y, device=dev)
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t_full = (time.perf_counter() - t0) * (n / ours_q if partial else 1.0)
    sub = retrieval_scores(x, y, queries=args["subset"], gallery=np.arange(n), device=dev)
    out = {
        "time_s": t_full,
        "value": full["roc_auc"],
        "subset_value": sub["roc_auc"],
        "p1": full["precision_at_1"],
    }
    out["peak_mib"] = _peak_mib()
    out["data_mib"] = base
    if dev.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _reference(args: dict[str, Any]) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    x, y = make_data(args["n"], args["d"], args["k"], args["seed"])
    base = _peak_mib()
    t0 = time.perf_counter()
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    aucs = []
    for q in args["subset"]:  # the reference code's per-query loop
        sims = xn @ xn[q]
        keep = np.arange(len(y)) != q
        target = y[keep] == y[q]
        if target.any() and not target.all():
            aucs.append(roc_auc_score(target, sims[keep]))
    elapsed = time.perf_counter() - t0
    return {
        "time_s": elapsed * args["n"] / len(args["subset"]),
        "measured_s": elapsed,
        "value": float(np.mean(aucs)),
        "peak_mib": _peak_mib(),
        "data_mib": base,
    }


def _floor(args: dict[str, Any]) -> dict[str, Any]:
    """The similarity matmuls alone (float32, blocks of queries x all rows, as any exact method needs):
    a lower bound on any exact implementation's time on this device."""
    import torch

    x, _ = make_data(args["n"], args["d"], args["k"], args["seed"])
    dev = args["device"]
    xt = torch.nn.functional.normalize(torch.as_tensor(x, device=dev), dim=1)
    n = args["n"]
    nq = min(n, args["ours_queries"] or n)
    block = max(1, min(4096, (1 << 22) // n))
    t0 = time.perf_counter()
    total = 0.0
    for start in range(0, nq, block):
        total += float((xt[start : start + block] @ xt.T).max())  # consume the block
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    return {"time_s": (time.perf_counter() - t0) * n / nq}


def _clustering(args: dict[str, Any]) -> dict[str, Any]:
    from avexlab.evaluate.clustering import clustering_scores

    x, y = make_data(args["n"], args["d"], args["k"], args["seed"])
    t0 = time.perf_counter()
    res = clustering_scores(x, y, algorithm=args["algorithm"])
    return {"time_s": time.perf_counter() - t0, "value": res["nmi"], "peak_mib": _peak_mib()}


def _run(fn: Any, args: dict[str, Any]) -> dict[str, Any]:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, (args,))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000", help="comma-separated N values")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=50)
    p.add_argument("--ref-queries", type=int, default=2000, help="queries the reference loop really runs")
    p.add_argument(
        "--ours-queries", type=int, default=None, help="time avexlab on this many queries and extrapolate"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--clustering", action="store_true", help="also time clustering_scores (sklearn k-means)")
    p.add_argument("--algorithm", default="kmeans", choices=["kmeans", "minibatch"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--floor",
        action="store_true",
        help="also time the similarity matmuls alone (the bound on any speed-up)",
    )
    a = p.parse_args()
    for n in (int(s) for s in a.sizes.split(",")):
        rng = np.random.default_rng(a.seed + 1)
        subset = np.sort(rng.choice(n, size=min(n, a.ref_queries), replace=False))
        args = {
            "n": n,
            "d": a.dim,
            "k": a.classes,
            "seed": a.seed,
            "device": a.device,
            "subset": subset,
            "ours_queries": a.ours_queries,
        }
        ours = _run(_ours, args)
        ref = _run(_reference, args)
        extrap = (
            ""
            if len(subset) == n
            else f" (extrapolated from {len(subset)} queries: {ref['measured_s']:.1f} s)"
        )
        print(f"N={n} D={a.dim} classes={a.classes} device={a.device}")
        if a.ours_queries is not None and a.ours_queries < n:
            print(
                f"  (avexlab timed on {a.ours_queries} queries x {n} gallery and extrapolated; value over them)"
            )
        print(
            f"  avexlab  R-auc {ours['value']:.12f}  P@1 {ours['p1']:.4f}  {ours['time_s']:.2f} s  "
            f"peak RSS {ours['peak_mib']:.0f} MiB (data alone {ours['data_mib']:.0f} MiB)"
            + (f"  GPU peak {ours['gpu_peak_mib']:.0f} MiB" if "gpu_peak_mib" in ours else "")
        )
        print(
            f"  reference loop {ref['time_s']:.2f} s{extrap}  peak RSS {ref['peak_mib']:.0f} MiB "
            f"(data alone {ref['data_mib']:.0f} MiB)"
        )
        diff = abs(ours["subset_value"] - ref["value"])
        print(
            f"  same {len(subset)} queries: avexlab {ours['subset_value']:.12f}  reference {ref['value']:.12f}  "
            f"|diff| {diff:.2e}"
        )
        print(f"  speed-up x{ref['time_s'] / ours['time_s']:.1f}")
        if a.floor:
            fl = _run(_floor, args)
            print(
                f"  similarity matmuls alone {fl['time_s']:.2f} s: no exact method beats the reference loop by more "
                f"than x{ref['time_s'] / fl['time_s']:.1f} on this device"
            )
        if a.clustering:
            cl = _run(_clustering, {**args, "algorithm": a.algorithm})
            print(
                f"  clustering ({a.algorithm}) NMI {cl['value']:.4f}  {cl['time_s']:.2f} s  peak RSS {cl['peak_mib']:.0f} MiB"
            )


if __name__ == "__main__":
    main()
