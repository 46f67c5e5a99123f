"""``avexlab workshop``: prepare a course, check a laptop, build a wheelhouse. Each command is a thin wrapper
over :mod:`avexlab.workshop`; heavy modules are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avexlab.errors import AvexlabError

workshop_app = typer.Typer(
    help="The workshop kit: prepare the course, check a laptop offline, build a wheelhouse for USB sticks.",
    no_args_is_help=True,
)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@workshop_app.command("prepare")
def prepare_cmd(
    scale: Annotated[
        str, typer.Option(help="workshop (the quick world, for laptops) or smoke (seconds, CI).")
    ] = "workshop",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Course folder (default: ~/avexlab-workshop/SCALE or $AVEXLAB_WORKSHOP_DIR/SCALE)."
        ),
    ] = None,
    grid: Annotated[
        Path, typer.Option(help="A finished quick grid run holding the course's checkpoints.")
    ] = Path("results/grid"),
    seed: Annotated[int, typer.Option(help="Seed of the world.")] = 0,
    workers: Annotated[
        int | None, typer.Option(help="Processes rendering the world (default 2; 1 at smoke scale).")
    ] = None,
) -> None:
    """Render the course's world and precompute every embedding and result the six sections read."""
    from avexlab.workshop.course import prepare

    try:
        prepare(scale, out, grid=grid, seed=seed, workers=workers, echo=typer.echo)
    except AvexlabError as err:
        _fail(err)


@workshop_app.command("check")
def check_cmd(
    course: Annotated[
        Path | None,
        typer.Option(
            help="Course folder (default: ~/avexlab-workshop/SCALE or $AVEXLAB_WORKSHOP_DIR/SCALE)."
        ),
    ] = None,
    scale: Annotated[str, typer.Option(help="Scale of the default course folder.")] = "workshop",
    imports_only: Annotated[
        bool, typer.Option(help="Only Python and the packages (right after installing).")
    ] = False,
) -> None:
    """Check this laptop for the course, offline: one PASS/FAIL line per item; exit 1 if any fails."""
    from avexlab.workshop.laptop import check_laptop

    if course is None:
        from avexlab.workshop.paths import workshop_home

        course = workshop_home() / scale
    items = check_laptop(course, imports_only=imports_only)
    for item in items:
        typer.secho(item.line(), fg=typer.colors.GREEN if item.ok else typer.colors.RED)
    failed = sum(not i.ok for i in items)
    typer.echo(f"{len(items) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(code=1)


@workshop_app.command("wheelhouse")
def wheelhouse_cmd(
    out: Annotated[Path, typer.Option(help="Folder to fill with wheels.")] = Path("wheelhouse"),
    extras: Annotated[
        str, typer.Option(help="avexlab extras the laptops need, comma-separated.")
    ] = "notebooks",
    pip_arg: Annotated[
        list[str] | None, typer.Option("--pip-arg", help="Extra option for pip wheel (repeatable).")
    ] = None,
) -> None:
    """Build a wheelhouse: every wheel the course's environment needs, pinned to this environment, for
    offline installs (pip install --no-index --find-links OUT -r OUT/requirements.txt)."""
    from avexlab.workshop.wheelhouse import build_wheelhouse

    try:
        build_wheelhouse(
            out, extras=[e for e in extras.split(",") if e], pip_args=pip_arg or [], echo=typer.echo
        )
    except AvexlabError as err:
        _fail(err)
