"""Screenshots of the marimo notebooks for the README (``notebooks/screenshots/NN_name.png``).

    .venv/bin/python tools/screenshot_notebooks.py                       # every notebook, as in the README
    .venv/bin/python tools/screenshot_notebooks.py 05_call_types --height 1200 --out /tmp/shots

Each notebook is served with ``marimo run`` (as a reader sees it) and opened in headless Chromium; the
page is captured once every cell has run: no cell is queued or running and what it shows has stopped
changing. Images are 1280 x ``--height`` CSS pixels, stored with a 256-colour palette.
Each notebook has its README scale and height (``README_VIEW``): ``03_ablations`` at ``workshop`` scale
reads the committed grid (``results/grid``); the others build their smoke-scale world in seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from notebook_browser import chromium_page, serve
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# marimo shows an hourglass (data-testid="loading-indicator") while the kernel runs any cell, and marks a
# cell's status in edit mode; none of them left means the notebook has settled
BUSY = "[data-testid='loading-indicator'], [data-status='running'], [data-status='queued']"
# (scale, viewport height) of each README screenshot; a notebook not listed gets ("smoke", 1800)
README_VIEW = {
    "03_ablations": ("workshop", 1800),
    "04_ood": ("smoke", 1900),
    "06_individual_id": ("smoke", 3300),
    "07_paper_figures": ("smoke", 3400),
}


def _settle(page, timeout_s: float) -> None:
    """Wait until no cell is queued or running and what the page shows (its text, and the plots and
    players inside marimo's shadow roots) is unchanged for 3 s."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        shown = (
            page.evaluate("document.body.innerText.length"),
            page.locator(".js-plotly-plot").count(),
            page.locator(".avexlab-player canvas").count(),
        )
        if page.locator(BUSY).count() or shown != last:
            last, stable_since = shown, time.monotonic()
        elif time.monotonic() - stable_since >= 3:
            return
        page.wait_for_timeout(500)
    raise TimeoutError(f"the notebook was still running or changing after {timeout_s:.0f} s")


def screenshot(name: str, *, scale: str, height: int, out_dir: Path, timeout_s: float) -> Path:
    notebook = NOTEBOOKS / f"{name}.py"
    if not notebook.is_file():
        known = ", ".join(sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")))
        raise SystemExit(f"no notebook {notebook}: expected one of {known}")
    out = out_dir / f"{name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "page.png"
        log = Path(tmp) / "marimo.log"
        with serve(notebook, log, scale=scale, cwd=ROOT) as url, chromium_page(1280, height) as page:
            page.goto(url)
            page.locator("h1").first.wait_for(timeout=120_000)  # every notebook opens with its title
            _settle(page, timeout_s)
            page.wait_for_timeout(1500)  # plotly's last redraw
            page.screenshot(path=str(raw))  # marimo scrolls inside its app: the viewport is the picture
        errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
        if errors:
            raise RuntimeError(f"{name}: the notebook raised while serving; see {log.read_text()[-3000:]}")
        Image.open(raw).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
            out, optimize=True
        )
    return out


def main() -> None:
    known = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=known, help=f"notebooks (default: all of {', '.join(known)})")
    ap.add_argument("--scale", help="AVEXLAB_SCALE for the served notebook (default: its README view's)")
    ap.add_argument("--height", type=int, help="viewport height, the picture's (default: its README view's)")
    ap.add_argument("--out", type=Path, default=NOTEBOOKS / "screenshots")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a notebook may take to settle")
    a = ap.parse_args()
    for name in a.names:
        t0 = time.perf_counter()
        scale, height = README_VIEW.get(name, ("smoke", 1800))
        out = screenshot(
            name, scale=a.scale or scale, height=a.height or height, out_dir=a.out, timeout_s=a.timeout
        )
        print(
            f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  ({time.perf_counter() - t0:.0f} s)"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
