"""The documentation site builds without warnings, and its environment pages render.

The site is built into a temporary folder with the same command as ``make docs``
(``sphinx-build -W --keep-going -b html``). The OdorTaxis-v0 page, generated from the
env's docstring, is then opened in headless Chromium and its DOM is checked: the action
and observation tables must be real HTML tables with the docstring's header cells, and no
raw Markdown table row (``|---|``) may be left in the visible text.

Chromium comes from Debian (``apt-get install chromium``); ``make test`` installs it
through ``scripts/install_system_deps.sh``. The browser test skips only when no Chromium
binary is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# A Markdown delimiter row as it would show if not rendered; Sphinx's smartquotes turn
# "---" into dashes, so en and em dashes count too.
RAW_TABLE_ROW = re.compile(r"\|\s*:?[-\u2013\u2014]{2,}")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs_html")
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    proc = subprocess.run(
        [*cmd, str(DOCS), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def dump_dom(chromium: str, page: Path, profile_dir: Path) -> str:
    """The DOM of ``page`` after Chromium has loaded it (scripts run, CSS applied)."""
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # needed as root (CI containers); harmless otherwise
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "<html" in proc.stdout, (
        f"chromium --dump-dom failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


class PageTables(HTMLParser):
    """Tables of a page, each with the id of its innermost <section>, its header cells
    and its number of body rows; and the page's visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str | None] = []
        self.tables: list[dict] = []
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self._in_body = False
        self._hidden = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.sections.append(dict(attrs).get("id"))
        elif tag in ("script", "style", "head", "template"):
            self._hidden += 1
        elif tag == "table":
            section = self.sections[-1] if self.sections else None
            self._table = {"section": section, "headers": [], "rows": 0}
            self.tables.append(self._table)
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table is not None and self._in_body:
            self._table["rows"] += 1
        elif tag == "th":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self.sections:
            self.sections.pop()
        elif tag in ("script", "style", "head", "template"):
            self._hidden = max(0, self._hidden - 1)
        elif tag == "table":
            self._table = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "th" and self._cell is not None and self._table is not None:
            self._table["headers"].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if not self._hidden:
            self.text.append(data)

    def tables_in(self, section: str) -> list[dict]:
        return [t for t in self.tables if t["section"] == section]


def test_site_builds_without_warnings_and_has_a_page_per_registered_env(built_site: Path):
    from flyenv.registration import ENVS

    for entry in ENVS:
        page = built_site / "envs" / f"{entry.id.split('/')[-1]}.html"
        assert page.is_file(), f"no page for {entry.id}"
    for name in ("index", "architecture", "brains", "agents", "benchmarks", "data"):
        assert (built_site / f"{name}.html").is_file()
    assert (built_site / "_images" / "architecture.svg").is_file()


def test_odor_taxis_page_tables_render_in_chromium(built_site: Path, tmp_path: Path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "no Chromium binary on PATH (looked for "
            + ", ".join(CHROMIUM_NAMES)
            + "); `make test` installs Debian's chromium via scripts/install_system_deps.sh"
        )
    page = built_site / "envs" / "OdorTaxis-v0.html"
    dom = PageTables()
    dom.feed(dump_dom(chromium, page, tmp_path / "chromium-profile"))

    action = dom.tables_in("action-space")
    assert len(action) == 1, f"action space: expected one <table>, found {len(action)}"
    assert action[0]["headers"][:4] == ["Num", "Action", "Min", "Max"]
    assert action[0]["rows"] == 2  # left and right descending drive

    observation = dom.tables_in("observation-space")
    assert len(observation) == 2, "observation space: intensity table and ORN table"
    for table in observation:
        assert table["headers"] == ["Num", "Observation", "Min", "Max", "Unit"]
    assert observation[0]["rows"] == 7  # 4 odor sensors per channel + 3 self-motion rows

    text = "".join(dom.text)
    assert "Action Space" in text and "Observation Space" in text
    raw = [line for line in text.splitlines() if RAW_TABLE_ROW.search(line)]
    assert not raw, f"raw Markdown table rows visible on the page: {raw[:3]}"
    assert "| Num |" not in text
