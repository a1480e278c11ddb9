"""Open a Snakemake report in headless Chromium and screenshot a figure in it.

The report is a single-page app: its front page shows the workflow
description, and a figure appears only after a click. This tool makes a
*copy* of the report (the original is never changed) with a small script
appended that does what a reader's click does (``app.setView`` with the
figure's embedded image, exactly as the report's own eye button), lets
Chromium render it, and saves a screenshot.

Usage::

    python tools/report_screenshot.py results/report.html shot.png \
        [--figure outcome_fractions.png] [--front front.png]

Prints the result shown and the screenshot path; exits non-zero when the
report holds no such figure or Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("report_screenshot")

#: Appended to the copy: after the app has mounted, show the chosen result.
_SHOW = """
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var want = %s;
    var keys = Object.keys(results);
    var key = keys.find(function (k) { return k.endsWith(want); });
    document.title = key ? "showing:" + key : "missing:" + want;
    if (key) {
      app.setView({content: "img", contentPath: results[key].data_uri, resultPath: key});
    }
  }, 300);
});
</script>
"""


def find_chromium() -> str | None:
    """Path of Debian's chromium (or chromium-browser / google-chrome), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def report_results(report: Path) -> dict:
    """The ``results`` object embedded in a Snakemake report (path -> entry)."""
    text = Path(report).read_text(encoding="utf-8")
    block = text.find('<script id="results">')
    start = text.find("var results = ", block)
    if block < 0 or start < 0:
        raise ValueError(f"{report}: no embedded 'results' (not a Snakemake report?)")
    start += len("var results = ")
    return json.JSONDecoder().raw_decode(text, start)[0]


def screenshot(url: str, out: Path, chromium: str, size: tuple[int, int] = (1400, 1000),
               timeout: int = 120) -> None:
    """Render ``url`` in headless Chromium and write a PNG screenshot to ``out``."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--virtual-time-budget=5000",
               f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not Path(out).is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): "
                           f"{proc.stderr[-2000:]}")


def screenshot_figure(report: Path, out: Path, figure: str, chromium: str,
                      size: tuple[int, int] = (1400, 1000)) -> str:
    """Screenshot the report with result ``figure`` (a path suffix) displayed.

    Returns
    -------
    str
        The report's key of the result shown.
    """
    keys = [k for k in report_results(report) if k.endswith(figure)]
    if not keys:
        raise KeyError(f"{report} holds no result ending in '{figure}'")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "report.html"
        text = Path(report).read_text(encoding="utf-8")
        cut = text.rfind("</body>")
        copy.write_text(text[:cut] + _SHOW % json.dumps(figure) + text[cut:], encoding="utf-8")
        screenshot(copy.as_uri(), out, chromium, size)
    return keys[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("out", type=Path, help="PNG of the report showing the figure")
    ap.add_argument("--figure", default="outcome_fractions.png",
                    help="result to show (end of its path; default %(default)s)")
    ap.add_argument("--front", type=Path, default=None, help="also screenshot the front page")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chromium = find_chromium()
    if chromium is None:
        log.error("chromium is not installed (Debian: apt-get install chromium)")
        return 2
    try:
        key = screenshot_figure(args.report, args.out, args.figure, chromium)
    except (KeyError, ValueError) as err:
        log.error("%s", err)
        return 1
    log.info("showing %s: %s", key, args.out)
    if args.front:
        screenshot(args.report.resolve().as_uri(), args.front, chromium)
        log.info("front page: %s", args.front)
    return 0


if __name__ == "__main__":
    sys.exit(main())
