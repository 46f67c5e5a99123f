"""``avexlab agile ...``: the agile-modeling loop from the shell, one command per step.

Each command is a thin wrapper over the library (:mod:`avexlab.agile`); heavy modules are imported inside
the commands so ``--help`` stays fast. Input problems end the command with their message (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from avexlab.errors import AvexlabError

agile_app = typer.Typer(
    help="Agile modeling: embed an archive once, search by example, label, train, calibrate, review, detect, "
    "export Raven tables. Typical session: build -> search -> label -> train -> calibrate -> next -> label -> "
    "train ... -> detect.",
    no_args_is_help=True,
)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _table(df: Any, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col))
    for row in df.iter_rows():
        table.add_row(*("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    Console(width=200).print(table)


def _labels_path(store: Path, labels: Path | None) -> Path:
    return labels if labels is not None else store / "labels.jsonl"


StoreArg = Annotated[Path, typer.Argument(help="The store folder (made by `avexlab agile build`).")]
LabelsOpt = Annotated[Path | None, typer.Option(help="Label table (.jsonl). Default: STORE/labels.jsonl.")]
ClassifierOpt = Annotated[Path, typer.Option(help="Classifier folder (made by `avexlab agile train`).")]


@agile_app.command("build")
def build(
    archive: Annotated[
        Path, typer.Argument(help="A folder of recordings, or a manifest (.parquet/.csv/.jsonl).")
    ],
    out: Annotated[Path, typer.Option(help="Store folder to create, resume or grow.")],
    encoder: Annotated[str, typer.Option(help="NAME:SIZE (random init, seeded) or a checkpoint path.")],
    root: Annotated[
        Path | None, typer.Option(help="With a manifest: the folder its paths are relative to.")
    ] = None,
    window_s: Annotated[float, typer.Option(help="Window length, seconds.")] = 5.0,
    hop_s: Annotated[
        float | None, typer.Option(help="Hop between windows, seconds (default: the window).")
    ] = None,
    layer: Annotated[
        int, typer.Option(help="Encoder layer pooled into each window's embedding (-1 = last).")
    ] = -1,
    pooling: Annotated[str, typer.Option(help="mean, max or cls.")] = "mean",
    dtype: Annotated[
        str, typer.Option(help="Stored precision: float32 or float16 (half the disk).")
    ] = "float32",
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 32,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ...")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of a NAME:SIZE encoder's random weights.")] = 0,
    unit_windows: Annotated[
        int, typer.Option(help="Windows per committed unit (what a kill can lose).")
    ] = 256,
    index_above: Annotated[
        int, typer.Option(help="From this many windows on, also build/update the approximate search index.")
    ] = 100_000,
) -> None:
    """Embed every window of an archive into a store. Run the same command again to resume after a kill or to
    add new recordings; under `torchrun --nproc-per-node N -m avexlab.cli agile build ...` each process embeds
    its own shards."""
    from avexlab.agile.store import build_store

    try:
        store = build_store(
            archive, out, encoder, root=root, seed=seed, window_s=window_s, hop_s=hop_s, layer=layer,
            pooling=pooling, dtype=dtype, batch_size=batch_size, device=device, unit_windows=unit_windows,  # type: ignore[arg-type]
            index_above=index_above,
        )  # fmt: skip
    except AvexlabError as err:
        _fail(err)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"{store}")


@agile_app.command("info")
def info(
    store: StoreArg,
    verify: Annotated[bool, typer.Option(help="Recompute the SHA-256 of every committed unit.")] = False,
) -> None:
    """Describe a store: windows, recordings, encoder, segments, index, labels; optionally verify its bytes."""
    import json

    from avexlab.agile.labels import LabelTable
    from avexlab.agile.store import EmbeddingStore

    try:
        s = EmbeddingStore.open(store, allow_incomplete=True)
    except AvexlabError as err:
        _fail(err)
    e = s.encoder_meta
    typer.echo(repr(s))
    typer.echo(f"  recordings: {s.windows['path'].n_unique()}, segments: {len(s.segments)}, root: {s.root}")
    typer.echo(f"  encoder: {e['spec'] or e['name']} ({e['name']}), hash {e['hash']}, {e['sample_rate']} Hz")
    pending = s.pending_units()
    typer.echo(
        f"  complete: {'yes' if not pending else f'no, {pending} unit(s) to embed: run the build again'}"
    )
    idx = store / "index" / "index.json"
    if idx.exists():
        meta = json.loads(idx.read_text())
        current = "current" if meta["rows"] == len(s) else f"STALE ({meta['rows']} rows)"
        rk = meta["recall_k"]
        typer.echo(f"  index: usearch, {current}, recall@{rk} {meta[f'recall_at_{rk}']:.3f}")
    labels = LabelTable(store / "labels.jsonl")
    if labels.path.exists():
        cur = labels.current()
        typer.echo(f"  labels: {labels.entries().height} entries, {cur.height} current")
        _table(cur.group_by("label", "value").len().sort("label", "value"), title="current labels")
    if verify:
        problems = s.verify()
        typer.echo("  verify: every committed unit matches its hash" if not problems else "\n".join(problems))
        if problems:
            raise typer.Exit(code=1)


@agile_app.command("index")
def index(
    store: StoreArg,
    connectivity: Annotated[
        int, typer.Option(help="HNSW edges per node (more: better recall, bigger index).")
    ] = 16,
    expansion_add: Annotated[int, typer.Option(help="Candidates examined when inserting.")] = 128,
    expansion_search: Annotated[
        int,
        typer.Option(help="Candidates examined per query (256: recall@10 0.96 at 1M windows, see RESULTS)."),
    ] = 256,
    threads: Annotated[int, typer.Option(help="Threads (0 = all cores; 1 = deterministic graph).")] = 0,
    recall_queries: Annotated[int, typer.Option(help="Store windows used to measure recall@10.")] = 200,
) -> None:
    """Build or update the approximate (usearch) index of a store and measure its recall against exact search."""
    from avexlab.agile.search import SearchIndex
    from avexlab.agile.store import EmbeddingStore

    try:
        idx = SearchIndex.build(
            EmbeddingStore.open(store), connectivity=connectivity, expansion_add=expansion_add,
            expansion_search=expansion_search, threads=threads, recall_queries=recall_queries,
        )  # fmt: skip
    except AvexlabError as err:
        _fail(err)
    i = idx.info
    typer.echo(
        f"index of {i['rows']} windows ({i['added_rows']} added); recall@10 vs exact search: {i['recall_at_10']:.3f}"
    )


@agile_app.command("search")
def search_cmd(
    store: StoreArg,
    query: Annotated[
        list[str],
        typer.Option(help="PATH or PATH@START-END (seconds; relative to the store's root); repeatable."),
    ],
    k: Annotated[int, typer.Option(help="Results to return.")] = 20,
    combine: Annotated[
        str, typer.Option(help="Several queries: mean (one centroid) or max (best per window).")
    ] = "mean",
    method: Annotated[str, typer.Option(help="auto (index when current), exact or index.")] = "auto",
    out: Annotated[
        Path | None, typer.Option(help="Write the results here (.parquet) for `agile label --from`.")
    ] = None,
    device: Annotated[str, typer.Option(help="Where the query encoder runs.")] = "cpu",
) -> None:
    """Search the store by example: windows most similar to one or more clips or selections."""
    from avexlab.agile.search import Query, search
    from avexlab.agile.store import EmbeddingStore
    from avexlab.fsutil import atomic_write

    try:
        s = EmbeddingStore.open(store)
        hits = search(
            s,
            [Query.parse(q) for q in query],
            k=k,
            combine=combine,
            method=method,
            device=device,  # type: ignore[arg-type]
        )
    except AvexlabError as err:
        _fail(err)
    _table(
        hits.select("rank", "row", "path", "start_s", "end_s", "score"),
        title=f"{len(hits)} results ({hits['method'][0]})",
    )
    if out is not None:
        atomic_write(out, lambda t: hits.write_parquet(t))
        typer.echo(f"wrote {out}")


def _parse_ints(text: str) -> list[int]:
    from avexlab.agile.store import StoreError
    from avexlab.errors import expected_found

    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                a, b = part.split("-", 1)
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError as e:
        raise StoreError(
            expected_found("row list", "numbers and ranges like 3,5,8-12", repr(text), "Fix it.")
        ) from e
    return out


@agile_app.command("label")
def label(
    store: StoreArg,
    name: Annotated[str, typer.Option("--label", help="Class name, or 'background' (none of the classes).")],
    value: Annotated[str, typer.Option(help="positive or negative.")] = "positive",
    rows: Annotated[str | None, typer.Option(help="Store rows, e.g. 3,5,8-12.")] = None,
    from_: Annotated[
        Path | None,
        typer.Option("--from", help="A results file of `agile search` / `agile next` (its rows)."),
    ] = None,
    ranks: Annotated[str | None, typer.Option(help="With --from: only these ranks, e.g. 1-5,8.")] = None,
    annotator: Annotated[str | None, typer.Option(help="Who labels (default: your login name).")] = None,
    source: Annotated[
        str, typer.Option(help="Where the windows came from (search, review, active:margin ...).")
    ] = "manual",
    labels: LabelsOpt = None,
) -> None:
    """Append labels for store windows (the table is append-only; a later entry corrects an earlier one)."""
    import polars as pl

    from avexlab.agile.labels import LabelTable
    from avexlab.agile.store import EmbeddingStore, StoreError
    from avexlab.errors import expected_found

    try:
        s = EmbeddingStore.open(store)
        if (rows is None) == (from_ is None):
            raise StoreError(
                expected_found(
                    "windows to label",
                    "exactly one of --rows or --from",
                    "both" if rows else "neither",
                    "Pass one.",
                )
            )
        if from_ is not None:
            picked = pl.read_parquet(from_)
            if ranks is not None:
                picked = picked.filter(pl.col("rank").is_in(_parse_ints(ranks)))
            chosen = picked["row"].to_list()
            if (
                "window_id" in picked.columns
                and picked["window_id"].to_list() != s.windows["window_id"][chosen].to_list()
            ):
                raise StoreError(
                    expected_found(
                        str(from_),
                        "results of this store",
                        "rows of another store",
                        "Search this store again.",
                    )
                )
        else:
            chosen = _parse_ints(rows or "")
        n = LabelTable(_labels_path(store, labels)).add(
            s,
            chosen,
            name,
            value,
            annotator=annotator,
            source=source,  # type: ignore[arg-type]
        )
    except AvexlabError as err:
        _fail(err)
    typer.echo(f"appended {n} label(s) '{name}' ({value}) to {_labels_path(store, labels)}")


@agile_app.command("train")
def train(
    store: StoreArg,
    out: Annotated[Path, typer.Option(help="Classifier folder to write.")],
    labels: LabelsOpt = None,
    hidden: Annotated[int, typer.Option(help="Hidden units of a small MLP (0 = linear).")] = 0,
    l2: Annotated[float, typer.Option(help="Weight decay.")] = 1e-2,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights.")] = 0,
) -> None:
    """Train a classifier (one output per class + background) on the labelled windows' frozen embeddings."""
    from avexlab.agile.classifier import AgileClassifier, training_data
    from avexlab.agile.labels import LabelTable
    from avexlab.agile.store import EmbeddingStore

    try:
        s = EmbeddingStore.open(store)
        data = training_data(s, LabelTable(_labels_path(store, labels)))
        clf = AgileClassifier(hidden=hidden, l2=l2, seed=seed).fit(
            data.X, data.Y, data.classes, stats=s.stats(), encoder_hash=s.encoder_meta["hash"]
        )
        clf.save(out)
    except AvexlabError as err:
        _fail(err)
    import polars as pl

    counts = pl.DataFrame(
        {
            "output": clf.outputs,
            "positives": list(clf.info["positives"].values()),
            "negatives": list(clf.info["negatives"].values()),
        }
    )
    _table(
        counts, title=f"trained on {len(data)} labelled windows -> {out} (thresholds 0.5 until calibrated)"
    )


@agile_app.command("calibrate")
def calibrate(
    store: StoreArg,
    classifier: ClassifierOpt,
    labels: LabelsOpt = None,
    method: Annotated[str, typer.Option(help="temperature or platt.")] = "temperature",
    target_precision: Annotated[
        float | None, typer.Option(help="Choose each class's threshold for this precision.")
    ] = 0.9,
    target_recall: Annotated[
        float | None, typer.Option(help="Instead: choose thresholds for this recall.")
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (whole recordings held out).")] = 5,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    report: Annotated[
        Path | None, typer.Option(help="Also write the per-class report here (.parquet).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of folds and bootstrap.")] = 0,
) -> None:
    """Calibrate a classifier and pick per-class thresholds from held-out scores of the labelled windows
    (cross-validated by recording), with bootstrap intervals; print the per-class report and ECE."""
    import numpy as np
    import polars as pl
    from scipy.special import expit

    from avexlab.agile.calibration import (
        Calibrator,
        classification_report,
        expected_calibration_error,
        threshold_for_precision,
        threshold_for_recall,
    )
    from avexlab.agile.classifier import AgileClassifier, cross_val_logits, training_data
    from avexlab.agile.labels import LabelTable
    from avexlab.agile.store import EmbeddingStore
    from avexlab.fsutil import atomic_write

    try:
        s = EmbeddingStore.open(store)
        clf = AgileClassifier.load(classifier)
        clf.check_store(s)
        data = training_data(s, LabelTable(_labels_path(store, labels)), classes=clf.classes)
        params = {
            "hidden": clf.hidden,
            "l2": clf.l2,
            "class_weight": clf.class_weight,
            "max_iter": clf.max_iter,
        }
        oof = cross_val_logits(data, folds=folds, seed=seed, stats=(clf.mean_, clf.scale_), **params)
        cal = Calibrator.fit(oof, data.Y, method)  # type: ignore[arg-type]
        p_raw = expit(oof.astype(np.float64))
        p_cal = expit(cal.apply(oof).astype(np.float64))
        rows = []
        for j, c in enumerate(clf.classes):
            if target_recall is not None:
                t = threshold_for_recall(
                    p_cal[:, j], data.Y[:, j], target_recall, n_resamples=resamples, seed=seed
                )
            else:
                t = threshold_for_precision(
                    p_cal[:, j], data.Y[:, j], target_precision or 0.9, n_resamples=resamples, seed=seed
                )
            clf.thresholds[c] = float(t["threshold"])
            rows.append(
                {
                    "class": c,
                    "threshold": t["threshold"],
                    "thr_lo": t["threshold_lo"],
                    "thr_hi": t["threshold_hi"],
                    "precision": t["precision"],
                    "prec_lo": t["precision_lo"],
                    "prec_hi": t["precision_hi"],
                    "recall": t["recall"],
                    "reachable": t["reachable"],
                    "ece_before": expected_calibration_error(p_raw[:, j], data.Y[:, j]),
                    "ece_after": expected_calibration_error(p_cal[:, j], data.Y[:, j]),
                }
            )
        clf.calibration = cal
        clf.save(classifier)
        rep = classification_report(data.Y, p_cal, clf.outputs, clf.thresholds)
        if report is not None:
            atomic_write(report, lambda t: rep.write_parquet(t))
    except AvexlabError as err:
        _fail(err)
    target = f"recall {target_recall}" if target_recall is not None else f"precision {target_precision}"
    _table(
        pl.DataFrame(rows), title=f"thresholds for {target} (90% bootstrap intervals), saved in {classifier}"
    )
    _table(rep, title="per-class report on held-out scores (cross-validated by recording)")
    missed = [r["class"] for r in rows if not r["reachable"]]
    if missed:
        typer.secho(
            f"warning: the target was not reached for {', '.join(missed)}: their threshold detects nothing. "
            "Label more examples (agile next) and calibrate again.",
            fg=typer.colors.YELLOW,
            err=True,
        )


@agile_app.command("next")
def next_cmd(
    store: StoreArg,
    classifier: ClassifierOpt,
    strategy: Annotated[str, typer.Option(help="margin, uncertainty or random (the control).")] = "margin",
    k: Annotated[int, typer.Option(help="Windows to propose.")] = 10,
    label_class: Annotated[
        str | None,
        typer.Option("--class", help="Only this class's decision boundary (margin around its threshold)."),
    ] = None,
    labels: LabelsOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the batch here (.parquet) for `agile label --from`.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of ties and of random.")] = 0,
) -> None:
    """Propose the next windows to label (active learning), skipping labelled ones."""
    import numpy as np

    from avexlab.agile.active import next_batch
    from avexlab.agile.classifier import AgileClassifier
    from avexlab.agile.detect import score_store
    from avexlab.agile.labels import LabelTable
    from avexlab.agile.store import EmbeddingStore, StoreError
    from avexlab.errors import expected_found
    from avexlab.fsutil import atomic_write

    try:
        s = EmbeddingStore.open(store)
        clf = AgileClassifier.load(classifier)
        probs = score_store(s, clf) if strategy != "random" else None
        cols, thr = None, None
        if label_class is not None:
            if label_class not in clf.classes:
                raise StoreError(
                    expected_found("--class", f"one of {clf.classes}", repr(label_class), "Check it.")
                )
            cols, thr = [clf.classes.index(label_class)], np.array([clf.thresholds[label_class]])
        done = LabelTable(_labels_path(store, labels)).current()["window_id"].unique().to_list()
        batch = next_batch(
            s, probs, k, strategy=strategy, labelled=done, columns=cols, thresholds=thr, seed=seed
        )  # type: ignore[arg-type]
    except AvexlabError as err:
        _fail(err)
    _table(
        batch.select("rank", "row", "path", "start_s", "end_s", "priority"),
        title=f"next {len(batch)} ({strategy})",
    )
    if out is not None:
        atomic_write(out, lambda t: batch.write_parquet(t))
        typer.echo(f"wrote {out}")


@agile_app.command("detect")
def detect_cmd(
    store: StoreArg,
    classifier: ClassifierOpt,
    out: Annotated[Path, typer.Option(help="Detections table to write (.parquet).")],
    merge: Annotated[bool, typer.Option(help="Merge overlapping windows of a class into one event.")] = True,
    raven_dir: Annotated[Path | None, typer.Option(help="Also write Raven selection tables here.")] = None,
) -> None:
    """Run the classifier over every window and keep those at or above each class's threshold."""
    from avexlab.agile.classifier import AgileClassifier
    from avexlab.agile.detect import detect, score_store, write_detections, write_raven
    from avexlab.agile.store import EmbeddingStore

    try:
        s = EmbeddingStore.open(store)
        clf = AgileClassifier.load(classifier)
        probs = score_store(s, clf, progress=True)
        det = detect(s, clf, probs=probs, merge=merge)
        write_detections(det, out)
        files = write_raven(det, raven_dir, store=s) if raven_dir is not None else []
    except AvexlabError as err:
        _fail(err)
    _table(det.group_by("label").len().sort("label"), title=f"{det.height} detections -> {out}")
    if raven_dir is not None:
        typer.echo(f"{len(files)} Raven selection table(s) in {raven_dir}")


@agile_app.command("export")
def export(
    detections: Annotated[Path, typer.Argument(help="A detections table (.parquet) from `agile detect`.")],
    raven_dir: Annotated[
        Path, typer.Option(help="Folder for the Raven selection tables (one per recording).")
    ],
    store: Annotated[
        Path | None, typer.Option(help="The store (full paths and Nyquist band in the tables).")
    ] = None,
) -> None:
    """Write detections as Raven selection tables (readable by Raven, avexlab's Raven adapter and crowsetta)."""
    import polars as pl

    from avexlab.agile.detect import write_raven
    from avexlab.agile.store import EmbeddingStore

    try:
        s = EmbeddingStore.open(store) if store is not None else None
        files = write_raven(pl.read_parquet(detections), raven_dir, store=s)
    except AvexlabError as err:
        _fail(err)
    typer.echo(f"{len(files)} Raven selection table(s) in {raven_dir}")
