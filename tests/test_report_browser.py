"""report.html in a real browser: headless Chromium lays out the page of a GLM run and of a BKMR
run at 1280 x 800, and the first screen must hold the headline table and a figure.

Skipped where Chromium is not installed (Debian: `apt-get install chromium`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bayesmetal.cli import fit_main

from .fakesampler import use_fake_sampler
from .toydata import base_config, bkmr_table_config, glm_frame

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not on PATH (chromium or chromium-browser; Debian: apt-get "
    "install chromium): the report's layout is checked by test_report.py only",
)
WIDTH, HEIGHT = 1280, 800  # the first screen
# measured once the page and its images are laid out, written into the DOM for --dump-dom
MEASURE = """<script>
window.addEventListener("load", () => {
  const top = (el) => (el ? el.getBoundingClientRect().top + window.scrollY : null);
  const found = {
    headline_table: top(document.querySelector("table.headline")),
    first_img: top(document.querySelector("img")),
    banner: top(document.getElementById("verdict")),
    details: top(document.getElementById("details")),
    height: document.documentElement.scrollHeight,
    images: document.querySelectorAll("img").length,
    broken: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0).length,
  };
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # as root (containers, CI)
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def measure(page: Path, tmp: Path) -> dict:
    """Positions (px from the top of the page) of the report's parts, from Chromium's layout
    at WIDTH x HEIGHT; a screenshot of the first screen is left in `tmp`."""
    probe = tmp / f"{page.parent.name}-measured.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = chromium(tmp, "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom)
    assert found, f"no measurement in Chromium's DOM: {dom[-500:]}"
    chromium(tmp, f"--screenshot={tmp / f'{page.parent.name}-first-screen.png'}", page.as_uri())
    return json.loads(found.group(1))


def assert_first_screen(found: dict, page: Path, tmp: Path) -> None:
    assert found["broken"] == 0 and found["images"] >= 2
    assert found["banner"] is not None and found["banner"] < 200
    assert found["headline_table"] is not None and found["headline_table"] < HEIGHT, found
    assert found["first_img"] is not None and found["first_img"] < HEIGHT, found
    assert found["details"] > found["headline_table"]  # the details come after the answer
    assert (tmp / f"{page.parent.name}-first-screen.png").stat().st_size > 1000


def test_glm_report_first_screen(tmp_path, monkeypatch):
    use_fake_sampler(monkeypatch)  # layout, not statistics: prior draws in seconds
    frame, _ = glm_frame(300, "gaussian", seed=4)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    (tmp_path / "glm.yaml").write_text(yaml.safe_dump(base_config()))
    out = tmp_path / "glm"
    assert fit_main([str(tmp_path / "glm.yaml"), "--out", str(out)]) == 0
    found = measure(out / "report.html", tmp_path)
    assert_first_screen(found, out / "report.html", tmp_path)
    assert found["height"] < 3 * HEIGHT  # the details are collapsed


def test_bkmr_report_first_screen(tmp_path):
    """A short real BKMR run (Gibbs engine, knots, random intercept: seconds), whose checks
    fail: the red banner must not push the answer off the first screen."""
    config = bkmr_table_config(tmp_path, progressbar=False)
    out = tmp_path / "bkmr"
    assert fit_main([str(config), "--out", str(out)]) == 0
    page = out / "report.html"
    assert "banner bad" in page.read_text()  # 20 draws: the checks fail
    found = measure(page, tmp_path)
    assert_first_screen(found, page, tmp_path)
