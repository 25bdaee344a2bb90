"""The view page in a real headless Chromium: filter, open a record, mark it drop, and the
export leaves it out. One browser for the module; skipped, with the reason, without Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from critique_synth.config import ExportOptions
from critique_synth.export import export
from critique_synth.view.review import read_decisions
from critique_synth.view.server import ViewServer, serve

from .test_view import make_run

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "headless Chromium not found (need chromium and chromedriver on PATH: "
        "apt-get install chromium chromium-driver, as .ci/run does)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("view") / "run")


@pytest.fixture(scope="module")
def site(run: Path) -> Iterator[ViewServer]:
    srv = serve([run], port=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_text(browser: webdriver.Chrome, selector: str, text: str) -> None:
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))


def test_summary_shows_counts_and_teachers(browser: webdriver.Chrome, site: ViewServer) -> None:
    browser.get(site.url)
    wait_text(browser, "#count-critiques", "24")
    assert browser.find_element(By.ID, "count-rejected").text == "1"
    page = browser.find_element(By.ID, "summary").text
    assert "llm:judge" in page and "Teacher agreement" in page and "invalid_json" in page


def test_filter_open_mark_drop_then_export_leaves_it_out(
    browser: webdriver.Chrome, site: ViewServer, run: Path, tmp_path: Path
) -> None:
    browser.get(site.url + "#/records")
    wait_text(browser, "#list-total", "of 25")
    Select(browser.find_element(By.ID, "f-agreement")).select_by_value("teachers_disagree")
    wait_text(browser, "#list-total", "1–4 of 4")
    Select(browser.find_element(By.ID, "f-teacher")).select_by_value("llm:judge")
    wait_text(browser, "#list-total", "1–2 of 2")
    search = browser.find_element(By.ID, "f-q")
    search.send_keys("case 9", Keys.ENTER)
    wait_text(browser, "#list-total", "1–1 of 1")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ENTER)  # the selected (first) row opens
    record = WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "record")))
    key = record.get_attribute("data-key")
    labelled = browser.find_element(By.CSS_SELECTOR, "#steps li.labelled")
    assert labelled.get_attribute("data-step") == "2" and "builtin: first wrong" in labelled.text
    teachers = browser.find_elements(By.CSS_SELECTOR, "#critiques section")
    assert [t.get_attribute("data-teacher") for t in teachers] == ["llm:judge", "builtin"]
    browser.find_element(By.TAG_NAME, "body").send_keys("d")
    wait_text(browser, "#review-status", "marked drop")
    assert read_decisions(run / "review.jsonl") == {key: "drop"}
    result = export([run], tmp_path / "ds", ExportOptions(select="all"), review=run / "review.jsonl")
    assert result.counts["dropped"]["review_drop"] == 1
    keys = pq.read_table(tmp_path / "ds" / "data" / "cft" / "train-00000-of-00001.parquet")["key"].to_pylist()
    assert key not in keys and len(keys) == 23


def test_keyboard_walks_the_filtered_list(browser: webdriver.Chrome, site: ViewServer) -> None:
    browser.get(site.url + "#/records?kind=reject")
    wait_text(browser, "#list-total", "1–1 of 1")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
    wait_text(browser, "#raw", "{oops")
    browser.get(site.url + "#/records?verdict=wrong")
    wait_text(browser, "#list-total", "of 10")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("j", "j", Keys.ENTER)
    wait_text(browser, "#record .recordbar", "3 of 10")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    wait_text(browser, "#record .recordbar", "4 of 10")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait_text(browser, "#list-total", "of 10")


def test_an_error_from_the_server_shows_its_message(browser: webdriver.Chrome, site: ViewServer) -> None:
    browser.get(site.url + "#/record/99999")
    error = WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
    assert error.text.startswith("Error: 404: ") and "{" not in error.text  # the message, not raw JSON
