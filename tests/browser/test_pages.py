"""What a person sees, in a real headless chromium: the leaderboard chart on the Dagster asset page, the
stakeholder report's decision, and the API's /docs rendering with the internet cut off."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHECKOUT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = dict(sim_users=150, sim_items=80, sim_days=24)
# A page waits on the code location loading on a busy machine: generous, and polled, never slept.
PATIENCE_MS = 240_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (Debian package `chromium`; .ci/run installs it)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition, timeout: float = PATIENCE_MS / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s")
        time.sleep(0.5)


@contextmanager
def server(command: list[str], url: str, log: Path, **options):
    """A server in its own session, up when `url` answers; it and everything it started end with the block."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, **options)
        try:
            wait_until(lambda: answers(url) or process.poll() is not None)
            assert process.poll() is None, f"{command[0]} exited:\n{log.read_text()[-3000:]}"
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def browser(tmp_path):
    """Debian's chromium driven by playwright (which downloads no browser this way), with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            viewport={"width": 1400, "height": 1000},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        context.set_default_timeout(PATIENCE_MS)
        try:
            yield context
        finally:
            context.close()


def test_the_leaderboard_chart_shows_on_its_asset_page_and_the_report_shows_its_decision(home, tmp_path, browser):
    from recs_assets.cli import prepare_home, run_everything
    from recs_assets.settings import Settings

    settings = Settings(home=home, **TINY)
    prepare_home(settings)
    result, _ = run_everything(settings)
    assert result.success
    port = free_port()
    env = {**os.environ, "RECS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           **{f"RECS_{k.upper()}": str(v) for k, v in TINY.items()}}
    command = [str(BIN / "dagster-webserver"), "-w", str(CHECKOUT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    with server(command, f"http://127.0.0.1:{port}/server_info", tmp_path / "webserver.log", cwd=home / "dagster", env=env):
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/assets/model_leaderboard")
        chart_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="chart", exact=True))
        chart_row.get_by_text("Show Markdown").click()
        chart = page.locator('img[alt="ndcg@10 per model with 95% intervals"]')
        chart.wait_for(state="visible")
        width, height = chart.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert width > 300 and height > 100, "the chart is there but did not decode as an image"
    report = pl.read_parquet(home / "lake" / "stakeholder_report.parquet").row(0, named=True)
    page = browser.new_page()
    page.goto(Path(report["html_path"]).as_uri())
    lead = page.locator("p.lead")
    lead.wait_for(state="visible")
    assert lead.inner_text().startswith(f"Decision: {report['decision'].upper()}")
    assert page.locator("img").first.evaluate("img => img.naturalWidth") > 0  # its key chart renders too


def test_the_api_prints_its_url_and_its_docs_render_without_the_internet(tmp_path, browser):
    port = free_port()
    env = {**os.environ, "RECS_HOME": str(tmp_path / "home"), "RECS_API_PORT": str(port)}
    env.pop("RECS_BROKER_URL", None)
    log = tmp_path / "api.log"
    with server([sys.executable, "-m", "recs_assets.serving"], f"http://127.0.0.1:{port}/health", log, env=env):
        assert re.search(rf"http://127\.0\.0\.1:{port}\b", log.read_text()), "the API did not print where it listens"
        page = browser.new_page()
        outside = []

        def only_loopback(route):
            if route.request.url.startswith(f"http://127.0.0.1:{port}/"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_loopback)  # as if offline: anything from elsewhere fails to load
        page.goto(f"http://127.0.0.1:{port}/docs")
        page.locator(".opblock-summary-path", has_text="/recommendations/{user_id}").wait_for(state="visible")
        assert outside == []
