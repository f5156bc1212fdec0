"""The dashboard in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by selenium)
loads the page against the live bot on the fake Alpaca server, signs in, checks positions and state, presses Halt,
accepts the confirmation, and sees the state change after the bot's next iteration (pushed by the live stream).

CI installs the browser (.ci/run) and sets REQUIRE_BROWSER=1, so a missing browser fails there instead of
skipping. Set DASHBOARD_SCREENSHOT=path to keep the desktop screenshot (the README's comes from here).
"""

from __future__ import annotations

import os
import shutil
import time

import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, LiveBot
from tests.ops.conftest import TOKEN, start_api
from trading.records.journal import Journal

pytestmark = pytest.mark.usefixtures("close_bots")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def browser():
    if not (CHROMIUM and DRIVER):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium/chromedriver here (apt-get install chromium chromium-driver); CI installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,2200"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def wait_for(check, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001  (an element not rendered yet)
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def position_rows(driver) -> dict[str, str]:
    """Symbol -> row class, read in one script call: the table re-renders on every pushed update, so element
    handles taken earlier can go stale between two reads (seen in CI)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#positions tbody tr[data-symbol]')]"
        ".map(r => [r.dataset.symbol, r.className])")
    return {symbol: cls or "" for symbol, cls in rows}


def test_dashboard_shows_positions_and_state_and_halts_the_bot(day_bars, tmp_path):
    from selenium.webdriver.common.by import By

    srv = FakeAlpaca(day_bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    srv.add_position("XOM", int(0.25 / 0.75 * 100_000 / srv.price("XOM")), 80.0)
    srv.add_position("MSFT", 10, 390.0)
    bot = LiveBot(srv, tmp_path / "journal.sqlite", env={"BREADTH_ENTRY_GATE": "false"})
    server = start_api(bot.journal_path, bot=bot.strategy)
    driver = browser()
    try:
        bot.iterate()
        srv.advance(pd.Timedelta(minutes=1))
        driver.get(server.url + "/")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "login").click()
        wait_for(lambda: driver.find_element(By.ID, "risk-mode").text == "ACTIVE", what="the risk state")
        assert driver.find_element(By.ID, "mode").text == "PAPER"
        shown = wait_for(lambda: position_rows(driver), what="position rows")
        assert set(shown) == set(srv.positions())  # every position the broker holds, JPM's entry included
        assert all("unprotected" not in cls for cls in shown.values())
        assert "$" in driver.find_element(By.ID, "equity").text
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#equity-chart .main-svg"), what="the equity chart")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#hedge-gauge .main-svg"), what="the hedge gauge")
        assert driver.find_elements(By.CSS_SELECTOR, "#decisions tbody tr")

        driver.find_element(By.ID, "btn-halt").click()
        alert = wait_for(lambda: driver.switch_to.alert, what="the confirmation")
        assert "Halt the bot?" in alert.text
        alert.accept()
        wait_for(lambda: "halt sent" in driver.find_element(By.ID, "control-result").text, what="the halt reply")
        srv.advance(pd.Timedelta(hours=1))
        bot.iterate()  # the bot obeys at its next iteration; the page learns it from the stream, not a reload
        wait_for(lambda: driver.find_element(By.ID, "risk-mode").text == "HALTED", what="HALTED on the page")
        assert "halt command" in driver.find_element(By.ID, "risk-why").text
        assert bot.strategy.risk.mode.name == "HALTED"
        controls = driver.find_element(By.ID, "controls").text
        assert "api 127.0.0.1" in controls and "halt" in controls
        shot = tmp_path / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("DASHBOARD_SCREENSHOT"):
            shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT"])
        driver.set_window_size(390, 844)  # a phone: the page still shows the state and the buttons
        driver.refresh()
        wait_for(lambda: driver.find_element(By.ID, "risk-mode").text == "HALTED", what="HALTED on a phone")
        assert driver.find_element(By.ID, "btn-resume").is_displayed()
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, f"the page is {width}px wide on a 390px phone"
        driver.save_screenshot(str(tmp_path / "dashboard-phone.png"))
    finally:
        driver.quit()
        server.stop()
        srv.stop()


def test_dashboard_browses_a_backtest_journal(journal_copy, backtest_journal, tmp_path):
    """`serve --journal` over a backtest: the end state, the equity curve against SPY and the gates, read-only."""
    import json

    from selenium.webdriver.common.by import By

    final = json.loads((backtest_journal.parent / "final_state.json").read_text())
    server = start_api(journal_copy)
    driver = browser()
    try:
        driver.get(server.url + "/")
        driver.find_element(By.ID, "token").send_keys("not the token")
        driver.find_element(By.ID, "login").click()
        wait_for(lambda: "Wrong token." in driver.page_source, what="the wrong-token message")
        wait_for(lambda: driver.find_element(By.ID, "token"), what="the login form again").send_keys(TOKEN)
        driver.find_element(By.ID, "login").click()
        wait_for(lambda: driver.find_element(By.ID, "mode").text == "BACKTEST", what="the backtest badge")
        shown = wait_for(lambda: position_rows(driver), what="position rows")
        assert list(shown) == [p["symbol"] for p in final["positions"]]
        unprotected = {p["symbol"] for p in final["positions"] if not p["protected"]}
        assert {symbol for symbol, cls in shown.items() if "unprotected" in cls} == unprotected
        traces = wait_for(lambda: driver.execute_script(
            "const g = document.getElementById('equity-chart'); return g.data && g.data.map(t => t.y.length)"),
            what="the equity chart's data")
        readings = len(Journal(journal_copy).frame("equity"))
        assert traces[0] == traces[1] == readings > 50  # equity and SPY, every reading of the run
        shot = tmp_path / "dashboard-backtest.png"
        assert driver.save_screenshot(str(shot))
        if os.environ.get("DASHBOARD_SCREENSHOT_BACKTEST"):
            shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT_BACKTEST"])
    finally:
        driver.quit()
        server.stop()
