"""Serve a marimo notebook (``marimo run``) on a loopback port and open it in headless Debian Chromium.

Used by the browser tests (``tests/notebooks/test_browser.py``) and by ``tools/screenshot_notebooks.py``.
Chromium comes from ``apt-get install -y chromium`` (``scripts/ensure_chromium.sh``); Playwright drives it
and never downloads a browser.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(notebook: Path, log_path: Path, *, scale: str = "smoke", cwd: Path | None = None) -> Iterator[str]:
    """``marimo run`` of ``notebook`` on a free loopback port at ``scale`` (``$AVEXLAB_SCALE``); yields its
    URL once it answers. The server's output goes to ``log_path``; it is stopped on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "marimo", "run", str(notebook), "--headless", "--no-token"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "AVEXLAB_SCALE": scale, "OMP_NUM_THREADS": "1"},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except OSError as err:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"marimo run did not serve {url} ({err}); its log:\n{log_path.read_text()[-3000:]}"
                        ) from err
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 2400) -> Iterator[Any]:
    """A headless Chromium page of ``width`` x ``height`` CSS pixels (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is absent: install it with apt-get install -y chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
