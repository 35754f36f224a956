"""A headless Chromium for the console's tests: Debian's chromium and chromium-driver driven by Selenium (the
driver is given, never downloaded). Screenshots go to target/console-screenshots/ (OVGW_SCREENSHOTS overrides it)."""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SHOTS = Path(os.environ.get("OVGW_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "target" / "console-screenshots")


def require() -> None:
    """Skips the calling module, with its reason, where there is no browser; under CI that is a failure."""
    reason = None
    if not (CHROMIUM and DRIVER):
        reason = "chromium and chromium-driver are not installed (scripts/test installs them as root)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            reason = "selenium is not installed (scripts/test installs tests/interop/requirements.txt)"
    if reason:
        if os.environ.get("CI"):
            raise RuntimeError(reason)
        pytest.skip(reason, allow_module_level=True)


@contextlib.contextmanager
def chromium(downloads: Path) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield driver
    finally:
        driver.quit()


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def until(what, timeout: float = 30.0, every: float = 0.2):
    """`what()` once it is truthy. The live regions are replaced while they are read: an element found just before
    its region was swapped is stale, which means "look again", not a failure."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            got = what()
        except StaleElementReferenceException:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)


def sign_in(driver, base: str, kind: str, ident: str, secret: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/console/")
    assert driver.current_url.endswith("/console/sign-in"), driver.current_url
    driver.find_element(By.CSS_SELECTOR, f"input[name=kind][value={kind}]").click()
    # Every field has its label (keyboard and screen-reader users find them by it).
    for field in ("id", "secret"):
        assert driver.find_element(By.CSS_SELECTOR, f"label[for={field}]").text
    driver.find_element(By.ID, "id").send_keys(ident)
    box = driver.find_element(By.ID, "secret")
    box.send_keys(secret)
    box.submit()
    until(lambda: driver.current_url.endswith("/console/gateways"))
