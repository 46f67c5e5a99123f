"""The ``avexlab`` command line. Each command is a thin wrapper over a library function (the same one the
notebooks and the Python API call); heavy modules are imported inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from avexlab.errors import AvexlabError, ConfigError, expected_found

app = typer.Typer(
    help="avexlab: a workbench for animal-vocalization encoders (AVEX, ICLR 2026).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
data_app = typer.Typer(
    help="Manifests and datasets: make one from recordings and annotations, validate, check the paper's datasets.",
    no_args_is_help=True,
)
models_app = typer.Typer(help="Encoders: list architectures and sizes.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
# Agile modeling (avexlab.agile): build a store, search, label, train, calibrate, next, detect, export.
from avexlab.agile.cli import agile_app  # noqa: E402 - typer only; the commands import the rest lazily

app.add_typer(agile_app, name="agile")
# The workshop kit (avexlab.workshop): prepare a course, check a laptop offline, build a wheelhouse.
from avexlab.workshop.cli import workshop_app  # noqa: E402 - typer only; the commands import the rest lazily

app.add_typer(workshop_app, name="workshop")


def print_table(df: Any, title: str | None = None) -> None:
    """Print a polars DataFrame as a rich table (floats to 3 decimals)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in df.columns:
        # long names wrap inside their cell instead of being cut with an ellipsis (80-column terminals)
        table.add_column(str(col), overflow="fold")
    for row in df.iter_rows():
        table.add_row(*("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    Console().print(table)


def _int_list(text: str, option: str) -> tuple[int, ...]:
    from avexlab.errors import ConfigError

    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values:
        raise ConfigError(f"{option}: expected comma-separated integers such as 0,1,2, found {text!r}.")
    return values


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def synth(
    preset: Annotated[str, typer.Option(help="World preset: smoke, quick or paper.")] = "quick",
    seed: Annotated[int, typer.Option(help="Seed; (preset, seed) renders bit-identically.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder to write audio, manifests and world.json into.")] = Path(
        "worlds/quick-0"
    ),
    sample_rate: Annotated[int | None, typer.Option(help="Override the preset's sample rate (Hz).")] = None,
    workers: Annotated[
        int, typer.Option(help="Rendering processes (the audio is identical for any number).")
    ] = 1,
) -> None:
    """Render the synthetic bioacoustic world and its suites to OUT; print a summary table."""
    from avexlab.synth import render_world

    knobs = {} if sample_rate is None else {"sample_rate": sample_rate}
    try:
        world = render_world(preset, seed, out=out, progress=True, workers=workers, **knobs)
    except AvexlabError as err:
        _fail(err)
    print_table(world.summary(), title=f"world {preset} seed {seed} -> {out}")


@data_app.command("validate")
def data_validate(
    manifest: Annotated[Path, typer.Argument(help="Manifest file (.parquet, .csv or .jsonl).")],
    root: Annotated[
        Path | None, typer.Option(help="Data root that relative paths are resolved against.")
    ] = None,
    check_files: Annotated[bool, typer.Option(help="Also check that every audio file exists.")] = False,
) -> None:
    """Validate a manifest against the schema; errors name the row and the column."""
    from avexlab.data.manifest import validate_manifest_file

    try:
        summary = validate_manifest_file(manifest, root=root, check_files=check_files)
    except AvexlabError as err:
        _fail(err)
    _echo_manifest_summary(manifest, summary)


def _echo_manifest_summary(manifest: Path, summary: dict[str, Any], verb: str = "valid") -> None:
    typer.echo(
        f"{manifest}: {verb}, {summary['rows']} clips, {summary['labels']} labels, "
        f"{summary['duration_s'] / 3600:.2f} h known duration, hash {summary['hash'][:12]}"
    )
    for key in ("datasets", "splits", "domains"):
        typer.echo(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in summary[key].items()))


def _parse_fractions(text: str) -> tuple[float, float, float]:
    from avexlab.errors import ConfigError

    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ConfigError(
            f"--split-fractions: expected three comma-separated numbers (train,val,test), found {text!r}. "
            "E.g. --split-fractions 0.7,0.1,0.2."
        )
    return parts  # type: ignore[return-value]


def _split_by(manifest: Any, by: str, fractions: tuple[float, float, float], seed: int) -> Any:
    """``assign_splits`` (a ``by`` group never straddles two splits), warning on stderr when the groups
    cannot fill every split that has a positive fraction."""
    from avexlab.data.labels import assign_splits

    manifest = assign_splits(manifest, by=by, fractions=fractions, seed=seed)
    wanted = [s for s, f in zip(("train", "val", "test"), fractions, strict=True) if f > 0]
    empty = [s for s in wanted if not (manifest["split"] == s).any()]
    if empty:
        typer.secho(
            f"warning: split {', '.join(empty)} got no clips: {manifest[by].n_unique()} {by!r} group(s) cannot "
            "fill three splits. A probe needs train, val and test; split by a finer column or add recordings.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    return manifest


def _prepare(
    build: Any,
    root: Path,
    out: Path,
    events_out: Path | None,
    overwrite: bool,
    split_by: str | None,
    split_fractions: str,
    split_seed: int,
) -> None:
    """Run ``build`` (a ``prepare_*`` adapter: a manifest, or ``(manifest, events)``) and write what it
    built: the manifest to ``out``, its events (if any) to
    ``events_out`` (default: ``<out stem>.events.parquet`` beside it). With ``split_by`` the clips are
    first split train/val/test by that column (``assign_splits``: a group never straddles two splits).
    Existing files are kept unless ``overwrite``; both targets are checked before either is written. The
    summary reads the manifest back with its files checked under ``root``. Input errors end the command
    with their message (exit 2)."""
    from avexlab.data.manifest import validate_manifest_file, write_events, write_manifest

    try:
        built = build()
        manifest, events = built if isinstance(built, tuple) else (built, None)
        if split_by is not None:
            manifest = _split_by(manifest, split_by, _parse_fractions(split_fractions), split_seed)
        targets = [out]
        if events is not None:
            events_out = events_out or out.with_name(f"{out.stem}.events.parquet")
            targets.append(events_out)
        taken = [str(t) for t in targets if t.exists()]
        if taken and not overwrite:
            raise FileExistsError(
                f"expected new output files, found {', '.join(taken)} already there. Pick another --out "
                "(or --events-out), or pass --overwrite to replace them."
            )
        write_manifest(manifest, out)
        if events is not None:
            write_events(events, events_out)
        _echo_manifest_summary(out, validate_manifest_file(out, root=root), verb="written")
        if events is not None:
            typer.echo(f"{events_out}: {events.height} events")
    except (AvexlabError, FileExistsError) as err:
        _fail(err)
    typer.echo(f"paths are relative to {root}: pass --root {root} to embed, evaluate or validate it")


OutOpt = Annotated[Path, typer.Option(help="Manifest to write (.parquet, .csv or .jsonl).")]
DatasetOpt = Annotated[str, typer.Option(help="Dataset name: the clip ids' prefix and the dataset column.")]
SplitOpt = Annotated[
    str, typer.Option(help="Split of every clip (a labels CSV's split column wins): train, val or test.")
]
DomainOpt = Annotated[str, typer.Option(help="Recording domain of every clip: focal, soundscape or general.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace output files that already exist.")]
EventsOutOpt = Annotated[
    Path | None, typer.Option(help="Events table to write (default: <out stem>.events.parquet beside --out).")
]
LicenseOpt = Annotated[str | None, typer.Option(help="Licence of the recordings, stored per clip.")]
SplitByOpt = Annotated[
    str | None,
    typer.Option(
        help="Split train/val/test by this column so that no group straddles two splits: path (one recording), "
        "individual, session, clip_id ... Replaces --split and a CSV's split column."
    ),
]
SplitFractionsOpt = Annotated[
    str, typer.Option(help="With --split-by: train,val,test fractions of the clips.")
]
SplitSeedOpt = Annotated[int, typer.Option(help="With --split-by: the seed of the group shuffle.")]


@data_app.command("from-folder")
def data_from_folder(
    root: Annotated[
        Path, typer.Argument(help="Folder of recordings: <label>/<file> or any layout with --labels-csv.")
    ],
    out: OutOpt,
    dataset: DatasetOpt,
    labels_csv: Annotated[
        Path | None,
        typer.Option(
            help="CSV with columns path (relative to ROOT) and labels (;-separated), optional split and extra columns."
        ),
    ] = None,
    split: SplitOpt = "train",
    domain: DomainOpt = "focal",
    license: LicenseOpt = None,
    overwrite: OverwriteOpt = False,
    split_by: SplitByOpt = None,
    split_fractions: SplitFractionsOpt = "0.7,0.1,0.2",
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Make a manifest of a folder of recordings: one clip per file, labelled by its sub-folder or a CSV."""
    from avexlab.data.sources import prepare_audiofolder

    _prepare(
        lambda: prepare_audiofolder(
            root, dataset=dataset, labels_csv=labels_csv, split=split, domain=domain, license=license
        ),
        root, out, None, overwrite, split_by, split_fractions, split_seed,
    )  # fmt: skip


@data_app.command("from-raven")
def data_from_raven(
    table: Annotated[Path, typer.Argument(help="Raven selection table (.txt, tab-separated).")],
    audio_root: Annotated[Path, typer.Option(help="Folder holding the recordings the table annotates.")],
    label_column: Annotated[
        str, typer.Option(help="The annotation column with each selection's label, e.g. Species.")
    ],
    out: OutOpt,
    dataset: DatasetOpt,
    audio_path: Annotated[
        str | None,
        typer.Option(
            help="The recording (relative to --audio-root) when the table has no Begin File / Begin Path column."
        ),
    ] = None,
    split: SplitOpt = "train",
    domain: DomainOpt = "soundscape",
    events_out: EventsOutOpt = None,
    license: LicenseOpt = None,
    overwrite: OverwriteOpt = False,
    split_by: SplitByOpt = None,
    split_fractions: SplitFractionsOpt = "0.7,0.1,0.2",
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Make a manifest (one clip per selection) and an events table from a Raven selection table."""
    from avexlab.data.sources import prepare_raven

    _prepare(
        lambda: prepare_raven(
            table,
            dataset=dataset,
            audio_root=audio_root,
            label_column=label_column,
            audio_path=audio_path,
            split=split,
            domain=domain,
            license=license,
        ),
        audio_root, out, events_out, overwrite, split_by, split_fractions, split_seed,
    )  # fmt: skip


@data_app.command("from-sonic-visualiser")
def data_from_sonic_visualiser(
    annotation: Annotated[
        Path, typer.Argument(help="Sonic Visualiser annotation layer (.svl or exported .csv).")
    ],
    audio_root: Annotated[Path, typer.Option(help="Folder holding the recording.")],
    audio_path: Annotated[str, typer.Option(help="The annotated recording, relative to --audio-root.")],
    out: OutOpt,
    dataset: DatasetOpt,
    instant_clip_s: Annotated[
        float, typer.Option(help="Clip length (s) centred on an instant (time-only) annotation.")
    ] = 1.0,
    split: SplitOpt = "train",
    domain: DomainOpt = "soundscape",
    events_out: EventsOutOpt = None,
    license: LicenseOpt = None,
    overwrite: OverwriteOpt = False,
    split_by: SplitByOpt = None,
    split_fractions: SplitFractionsOpt = "0.7,0.1,0.2",
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Make a manifest (one clip per annotation) and an events table from a Sonic Visualiser layer."""
    from avexlab.data.sources import prepare_sonic_visualiser

    _prepare(
        lambda: prepare_sonic_visualiser(
            annotation,
            dataset=dataset,
            audio_root=audio_root,
            audio_path=audio_path,
            split=split,
            domain=domain,
            instant_clip_s=instant_clip_s,
            license=license,
        ),
        audio_root, out, events_out, overwrite, split_by, split_fractions, split_seed,
    )  # fmt: skip


@data_app.command("check-paper")
def data_check_paper(
    root: Annotated[Path, typer.Argument(help="Folder holding your local copies of the paper's datasets.")],
) -> None:
    """Check which of the paper's 26 datasets are present under ROOT and say what is missing."""
    from avexlab.data.registry import check_all

    report = check_all(root)
    print_table(report)


@models_app.command("list")
def models_list() -> None:
    """List encoder architectures and their size presets (with parameter counts), and the released models
    avexlab runs frozen (with their licence)."""
    import polars as pl

    from avexlab.errors import MissingDependencyError
    from avexlab.models import build_encoder, list_encoders
    from avexlab.models.registry import encoder_class

    rows = []
    for name, sizes in list_encoders().items():
        released = not encoder_class(name).trainable
        for size in sizes:
            row = {"encoder": name, "size": size, "parameters": "(not built here)", "weights": "random init"}
            if size == "base" and name != "logmel":
                rows.append(row)
                continue
            try:
                enc = build_encoder(name, size=size)
            except MissingDependencyError as err:
                rows.append({**row, "parameters": "(not installed)", "weights": str(err)})
                continue
            row["parameters"] = f"{enc.num_parameters():,}"
            if enc.num_parameters() == 0:
                row["weights"] = "none (not learned)"
            elif released:
                row["weights"] = f"{enc.checkpoint_id()}, frozen, licence {enc.metadata['license']}"
            rows.append(row)
    print_table(pl.DataFrame(rows))


@app.command()
def embed(
    encoder: Annotated[
        str,
        typer.Option(
            help="A checkpoint path, NAME:SIZE for a random-init encoder, or birdnet (released model)."
        ),
    ],
    manifest: Annotated[Path, typer.Option(help="Manifest of the clips to embed.")],
    out: Annotated[Path, typer.Option(help="Output .parquet (clip_id + embedding) or .npz.")],
    root: Annotated[Path | None, typer.Option(help="Data root of the manifest.")] = None,
    layer: Annotated[int, typer.Option(help="Layer to embed (-1 = last).")] = -1,
    pooling: Annotated[str, typer.Option(help="mean, max or cls.")] = "mean",
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = 32,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ...")] = "cpu",
) -> None:
    """Embed every clip of a manifest with one encoder and layer; write clip_id-keyed embeddings."""
    from avexlab.data.manifest import read_manifest
    from avexlab.evaluate.embed import extract_embeddings, resolve_encoder

    try:
        root = root or manifest.parent  # manifest paths are relative to the manifest's folder by default
        enc = resolve_encoder(encoder)
        df = read_manifest(manifest, root=root)
        emb = extract_embeddings(
            enc, df, root=root, layers=(layer,), pooling=pooling, batch_size=batch_size, device=device
        )
        emb.save(out)
    except AvexlabError as err:
        _fail(err)
    typer.echo(f"wrote {out}")


@app.command()
def evaluate(
    encoder: Annotated[
        str,
        typer.Option(
            help="A checkpoint path, NAME:SIZE (random init), birdnet (released model) or embeddings file."
        ),
    ],
    suite: Annotated[
        str | None, typer.Option(help="A suite of --world, e.g. syn-beans-clf, or 'all'.")
    ] = None,
    world: Annotated[Path, typer.Option(help="A rendered world folder (avexlab synth).")] = Path(
        "worlds/quick-0"
    ),
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Instead of --suite: your own manifest with train/val/test splits "
            "(avexlab data from-folder ... --split-by path); one benchmark, one row group per dataset."
        ),
    ] = None,
    root: Annotated[Path | None, typer.Option(help="With --manifest: the data root of its paths.")] = None,
    task_family: Annotated[
        str,
        typer.Option(
            help="With --manifest: classification, detection, birdset, individual_id (test queries against "
            "the training sessions) or repertoire."
        ),
    ] = "classification",
    layers: Annotated[
        str, typer.Option(help="'last', 'all' (every layer) or comma-separated layer indices such as 0,3,-1.")
    ] = "last",
    out: Annotated[Path, typer.Option(help="Results table to write (.parquet).")] = Path(
        "results/results.parquet"
    ),
    device: Annotated[str, typer.Option(help="cpu, cuda ...")] = "cpu",
    probe_recipe: Annotated[
        str,
        typer.Option(
            help="'standardized' (standardised features, >= 500 steps) or 'paper' (the reference recipe)."
        ),
    ] = "standardized",
) -> None:
    """Evaluate an encoder (probe, retrieval, clustering) on a world's suite or your own manifest; append to a
    tidy results table."""
    import polars as pl

    from avexlab.data.suite import Suite
    from avexlab.errors import ConfigError
    from avexlab.evaluate.report import save_results
    from avexlab.evaluate.spec import EvalSpec, parse_layers
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.evaluate.tables import last_layer, paper_table
    from avexlab.experiments import evaluate_encoder_on_world

    items = None
    try:
        spec = EvalSpec(
            layers=parse_layers(layers),
            device=device,
            probe_recipe=probe_recipe,  # type: ignore[arg-type]
            progress=manifest is not None,
        )
        if (suite is None) == (manifest is None):
            raise ConfigError(
                "avexlab evaluate: expected exactly one of --suite (a suite of --world) or --manifest (your "
                f"own labelled manifest), found {'both' if suite else 'neither'}. Pass one of them."
            )
        if manifest is not None:
            own = Suite.from_manifest(manifest, task_family=task_family, root=root)
            items: list[Any] = []
            results = evaluate_suite(encoder, own, spec, items=items)
            save_results(results, out, append=True, items=pl.concat(items) if items else None)
        else:
            results = evaluate_encoder_on_world(
                encoder, world, spec, suites=None if suite == "all" else [suite], out=out
            )
    except AvexlabError as err:
        _fail(err)
    if manifest is None:
        print_table(paper_table(results), title=f"{encoder} on {suite}")
        return
    # your own data has no paper column: every metric of the last layer, per dataset, with its interval
    from avexlab.evaluate.stats import row_intervals

    show, warnings = _with_intervals(last_layer(results), row_intervals(pl.concat(items)) if items else None)
    print_table(show, title=f"{encoder} on {manifest} ({task_family}); rows appended to {out}")
    for line in warnings:
        typer.secho(line, fg=typer.colors.YELLOW, err=True)


# An interval this wide (half-width) or a test split this small cannot tell encoders apart.
_WIDE_HALF_WIDTH = 0.05
_SMALL_TEST = 30


def _with_intervals(results: Any, intervals: Any) -> tuple[Any, list[str]]:
    """``dataset, method, metric, value, 95% CI, n`` (mean over probe seeds; the interval resamples the test
    items and seeds) and a warning per dataset whose test split is too small to tell encoders apart."""
    import polars as pl

    from avexlab.frames import exact_mean

    mean = results.group_by("dataset", "method", "metric", maintain_order=True).agg(
        exact_mean("value"), pl.col("n").max()
    )
    if intervals is None or intervals.height == 0:
        return mean.with_columns(pl.lit("").alias("95% CI")).select(
            "dataset", "method", "metric", "value", "95% CI", "n"
        ), []
    table = mean.join(intervals.select("dataset", "method", "metric", "ci_low", "ci_high", "n_items"),
                      on=["dataset", "method", "metric"], how="left")  # fmt: skip
    table = table.with_columns(
        pl.when(pl.col("ci_low").is_not_null())
        .then(pl.format("[{}, {}]", pl.col("ci_low").round(3), pl.col("ci_high").round(3)))
        .otherwise(pl.lit("n/a"))
        .alias("95% CI")
    )
    warnings = []
    for (dataset,), g in table.group_by(["dataset"], maintain_order=True):
        half = float(((g["ci_high"] - g["ci_low"]) / 2).drop_nulls().max() or 0.0)
        n = int(g["n"].max())
        if n < _SMALL_TEST or half > _WIDE_HALF_WIDTH:
            warnings.append(
                f"warning: dataset {dataset!r}: the test split holds {n} clips and the 95% intervals are up to "
                f"+-{half:.2f} wide, so encoders whose scores differ by less than that cannot be told apart on "
                "it. Add recordings, or give the test split a larger share (--split-fractions), before "
                "comparing encoders."
            )
    return table.select("dataset", "method", "metric", "value", "95% CI", "n"), warnings


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results table (.parquet) from evaluate, grid or demo.")],
    html: Annotated[Path | None, typer.Option(help="Also write an HTML report with plots here.")] = None,
) -> None:
    """Print the paper-shaped table of a results file; optionally write an HTML report with plots."""
    import polars as pl

    from avexlab.evaluate.report import items_path, load_results, write_html_report
    from avexlab.evaluate.tables import ood_report, paper_table

    try:
        df = load_results(results)
    except AvexlabError as err:
        _fail(err)
    print_table(paper_table(df), title="paper-shaped table")
    ipath = items_path(results)
    if ipath.is_file():
        from avexlab.evaluate.stats import cell_intervals

        cells = cell_intervals(pl.read_parquet(ipath), n_resamples=1000)
        shown = cells.select(
            "encoder",
            "column",
            pl.col("estimate").alias("value"),
            pl.format("[{}, {}]", pl.col("ci_low").round(3), pl.col("ci_high").round(3)).alias("95% CI"),
            "n_train_seeds",
            "n_probe_seeds",
        )
        print_table(shown, title="each column with its 95% interval (test clips and seeds resampled)")
    else:
        typer.echo(
            f"(no intervals: {ipath} is missing; evaluations written by this avexlab keep it beside the table)"
        )
    gaps = ood_report(df)
    if gaps.height:
        print_table(gaps, title="focal -> soundscape gap")
    if html is not None:
        write_html_report(df, html)
        typer.echo(f"wrote {html}")


@app.command()
def findings(
    results: Annotated[
        Path, typer.Argument(help="A grid's results.parquet (items.parquet must lie beside it).")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per finding.")] = False,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap draws.")] = 0,
) -> None:
    """The paper's findings on a grid: reproduced, contradicted or inconclusive, with effect and 95% interval.
    The verdicts are kept in the grid's analysis/ folder and reused while the tables and settings are unchanged."""
    import json

    from avexlab.experiments.findings import evaluate_findings, load_grid_tables

    try:
        table, items = load_grid_tables(results)
        verdicts = evaluate_findings(table, items, n_resamples=resamples, seed=seed, keep_in=results.parent)
    except AvexlabError as err:
        _fail(err)
    if json_out:
        for row in verdicts.select(
            "finding", "verdict", "effect", "ci_low", "ci_high", "n_pairs", "statement"
        ).iter_rows(named=True):
            typer.echo(json.dumps(row))
        return
    print_table(
        verdicts.select("finding", "verdict", "effect", "ci_low", "ci_high", "n_pairs"),
        title=f"the paper's findings on {results} (95% paired bootstrap intervals)",
    )
    for r in verdicts.iter_rows(named=True):
        typer.echo(f"{r['finding']}: {r['statement']}")


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config value: key.sub=value (repeatable).")
    ] = None,
) -> None:
    """Train an encoder from a YAML run config (SL, SSL or SL-SSL); torchrun-compatible."""
    from avexlab.config import load_run_config
    from avexlab.experiments import train_run

    try:
        cfg = load_run_config(config, overrides=set_ or [])
        run_dir = train_run(cfg)
    except AvexlabError as err:
        _fail(err)
    typer.echo(f"run written to {run_dir}")


@app.command()
def grid(
    profile: Annotated[str, typer.Option(help="Grid profile: smoke, quick or paper.")] = "quick",
    out: Annotated[Path, typer.Option(help="Folder for the runs and the results table.")] = Path(
        "results/grid"
    ),
    world: Annotated[Path | None, typer.Option(help="A rendered world folder (default: render one).")] = None,
    workers: Annotated[int, typer.Option(help="Encoders evaluated in parallel processes.")] = 1,
    train_seeds: Annotated[
        str | None,
        typer.Option(
            help="Training seeds of every cell, comma-separated (default: the profile's; quick: 0,1,2)."
        ),
    ] = None,
    probe_seeds: Annotated[
        str | None,
        typer.Option(
            help="Probe (and k-means) seeds, comma-separated (default: the profile's; quick: 42,43,44)."
        ),
    ] = None,
    existing: Annotated[
        str | None,
        typer.Option(help="Released encoders to evaluate beside the grid, comma-separated, e.g. birdnet."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a config key in every cell (key.sub=value), in one architecture's cells "
            "(ARCH:key=value) or in one paradigm of it (ARCH/PARADIGM:key=value); repeatable. "
            "E.g. beats/ssl:objective.kind=masked_spec.",
        ),
    ] = None,
) -> None:
    """Run the ablation grid (architectures x data mixes x paradigms), evaluate each encoder, write one table."""
    from avexlab.experiments.grid import grid as run_grid
    from avexlab.experiments.grid import profile_with_sets

    try:
        extra: dict[str, Any] = {}
        for key, text in (("train_seeds", train_seeds), ("probe_seeds", probe_seeds)):
            if text is not None:
                extra[key] = _int_list(text, f"--{key.replace('_', '-')}")
        if existing is not None:
            extra["existing"] = tuple(x.strip() for x in existing.split(",") if x.strip())
        prof = profile_with_sets(profile, set_ or [])
        results_path = run_grid(profile=prof, out=out, world=world, workers=workers, **extra)
    except AvexlabError as err:
        _fail(err)
    typer.echo(f"results written to {results_path}")


@app.command("grid-merge")
def grid_merge(
    parts: Annotated[
        list[Path], typer.Argument(help="Grid folders of one grid, each with other training seeds.")
    ],
    out: Annotated[Path, typer.Option(help="A new folder for the merged grid.")],
    weights: Annotated[
        bool, typer.Option(help="Copy the runs' weights (--no-weights: configs, metrics, provenance only).")
    ] = True,
) -> None:
    """Merge grid folders that ran the same grid with different training seeds into one grid folder."""
    from avexlab.experiments.grid_merge import merge_grids

    try:
        path = merge_grids(parts, out, weights=weights)
    except AvexlabError as err:
        _fail(err)
    typer.echo(f"merged grid written to {path}")


@app.command()
def choose(
    setting: Annotated[
        str,
        typer.Argument(
            help="KEY=V1,V2,...: a run config key and its candidate values, e.g. optim.lr=3e-4,1e-3,3e-3."
        ),
    ],
    cells: Annotated[
        str,
        typer.Option(
            help="sl or ssl cells to train per value, comma-separated, e.g. beats-all-sl,eat-all-ssl."
        ),
    ],
    world: Annotated[Path, typer.Option(help="A rendered world folder (rendered there when missing).")],
    out: Annotated[Path, typer.Option(help="Folder for the runs, validation.parquet and choice.json.")],
    profile: Annotated[str, typer.Option(help="Grid profile whose cells are trained.")] = "quick",
    train_seed: Annotated[int, typer.Option(help="Training seed of every run.")] = 0,
    tie: Annotated[
        float,
        typer.Option(
            help="Another value replaces the one in use only when its mean is more than this above."
        ),
    ] = 0.0,
) -> None:
    """Choose a training setting on validation suites (never the test columns): train the cells once per
    value, score them on validation, keep the value in use unless another beats it (choice.json says how).
    Resumable: finished runs and their scores are reused."""
    from avexlab.config import parse_override_value
    from avexlab.experiments.selection import choose_setting

    key, eq, text = setting.partition("=")
    values = [parse_override_value(v.strip()) for v in text.split(",") if v.strip()]
    try:
        if not eq or not key.strip() or len(values) < 2:
            raise ConfigError(
                expected_found(
                    "avexlab choose SETTING", "KEY=V1,V2,... with two values or more", repr(setting), ""
                )
            )
        names = [c.strip() for c in cells.split(",") if c.strip()]
        record = choose_setting(
            profile, key.strip(), values, names, out, world_dir=world, train_seed=train_seed, tie=tie
        )
    except AvexlabError as err:
        _fail(err)
    import polars as pl

    from avexlab.experiments.selection import TWIN

    table = pl.read_parquet(out / "validation.parquet").filter(pl.col("candidate") != TWIN)
    wide = table.pivot(on="candidate", index="cell", values="mean").rename(
        {f"{record['setting']}={v}": str(v) for v in record["values"]}
    )
    arch = pl.col("cell").str.split("-").list.first()
    wide = wide.with_columns(arch.replace_strict(record["twins"], default=None).alias(TWIN))
    print_table(
        wide,
        title=f"validation mean per cell and {record['setting']} (columns: {out / 'validation.parquet'})",
    )
    means = pl.DataFrame(record["means"]).with_columns(
        pl.col("candidate").str.replace(f"^{re.escape(record['setting'])}=", "")
    )
    print_table(means.rename({"candidate": record["setting"]}), title="mean over cells")
    typer.echo(
        f"{record['setting']}: in use {record['current']}, chosen {record['chosen']} ({out / 'choice.json'})"
    )


@app.command()
def demo(
    preset: Annotated[str, typer.Option(help="World preset.")] = "quick",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/demo"),
    train_steps: Annotated[
        int, typer.Option(help="Optimiser steps of the short training run (0 = skip).")
    ] = 150,
) -> None:
    """The main job: render the world, evaluate the baselines (and a short training run) on its suites."""
    from avexlab.experiments.demo import run_demo

    try:
        run_demo(
            preset=preset, seed=seed, out=out, train_steps=train_steps, echo=typer.echo, show=print_table
        )
    except AvexlabError as err:
        _fail(err)


if __name__ == "__main__":  # pragma: no cover
    app()
