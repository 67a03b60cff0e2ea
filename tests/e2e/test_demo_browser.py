"""End to end in a real browser: `recstream run` as a process, the `/demo` page in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium), a few clicks,
and the panels reacting to them.

``scripts/install-browser.sh`` installs the browser. Selenium is given both executables,
so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from . import test_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,1100",
)
READY_TIMEOUT = 90.0  # the first visit publishes the catalog and seeds the sessions
CLICK_TIMEOUT = 15.0
# The page shows a click's effect once the consumer applied it; on a loaded CI machine
# this bound is wider than the ~0.2 s the page takes on an idle one.
PANELS_WITHIN_MS = 2500

stack = test_stack.stack  # the dev stack as a process, from the stack test


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        message = f"{', '.join(missing)} missing: run scripts/install-browser.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, timeout: float, what: str, check: Callable[[WebDriver], bool]) -> None:
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.05).until(check)
    except TimeoutException:
        status = driver.find_element(By.ID, "status").text
        pytest.fail(f"no {what} within {timeout}s; the page says: {status!r}")


def _body(driver: WebDriver, name: str) -> str:
    return driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{name}") or ""


def _intent(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "intent-kind").get_attribute("data-kind") or "unknown"


def _recommended(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "recommendations").get_attribute("data-items") or ""


def _click_and_wait(driver: WebDriver, target: WebElement, applied: int) -> float:
    """Click, wait until the page shows the event applied; milliseconds from click to panels."""
    started = time.perf_counter()
    target.click()
    _wait(driver, CLICK_TIMEOUT, f"applied event #{applied}",
          lambda d: _body(d, "applied") == str(applied))  # fmt: skip
    return (time.perf_counter() - started) * 1000.0


def test_clicks_change_the_intent_and_the_recommendations(
    stack: test_stack.RunningStack, browser: WebDriver, datasets: Path, tmp_path: Path
) -> None:
    user = f"demo-e2e-{uuid.uuid4().hex[:8]}"
    browser.get(f"{stack.base_url}/demo?user={user}")
    _wait(browser, READY_TIMEOUT, "ready storefront", lambda d: _body(d, "ready") == "true")

    assert not browser.find_element(By.ID, "problem").is_displayed()
    assert browser.find_element(By.ID, "user").get_attribute("value") == user
    cards = browser.find_elements(By.CSS_SELECTOR, "[data-testid=product-card]")
    assert len(cards) == 48
    assert _intent(browser) == "unknown"
    cold = _recommended(browser)
    assert cold, "a new user gets popular items from the seeded sessions"

    # three product views in two departments, quickly: a browsing session
    waits = []
    for applied, card in enumerate((cards[0], cards[1], cards[9]), start=1):
        waits.append(_click_and_wait(browser, card.find_element(By.CSS_SELECTOR, ".tile"), applied))
    browsing = _intent(browser)
    assert browsing not in ("unknown", "transactional"), browsing
    after_views = _recommended(browser)
    assert after_views != cold, "the recommendations react to the views"
    profile = browser.find_element(By.ID, "profile")
    assert profile.get_attribute("data-total-events") == "3"

    # a cart add makes the session transactional
    cart = cards[9].find_element(By.CSS_SELECTOR, "[data-testid=add-to-cart]")
    waits.append(_click_and_wait(browser, cart, 4))
    assert _intent(browser) == "transactional"
    assert profile.get_attribute("data-total-events") == "4"

    items = browser.find_elements(By.CSS_SELECTOR, "#recommendations li")
    assert len(items) == 8
    reasons = browser.find_elements(By.CSS_SELECTOR, "#recommendations li .reason")
    assert reasons, "the top recommendations carry their explanation"
    assert all(r.text.strip() for r in reasons)
    session = browser.find_element(By.ID, "session").text
    assert "4 events" in session

    shot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}; click to panels (ms): {[round(w) for w in waits]}")

    assert max(waits) < PANELS_WITHIN_MS, waits
    logs = browser.get_log("browser")  # type: ignore[no-untyped-call]  # selenium: unannotated
    errors = [e for e in logs if e["level"] == "SEVERE"]
    assert not errors, errors
