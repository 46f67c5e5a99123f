"""Command-line interface (placeholder, filled in below)."""
import typer

app = typer.Typer(help="avexlab: animal-vocalization encoder workbench.")
