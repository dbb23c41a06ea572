"""The demo's Snakemake HTML report, opened in a real headless Chromium (Debian's package).

Clicks through the report as a reader does: a stage's category, an item's view button, and reads
the page the report shows in its frame. Needs `chromium` and `chromium-driver` (apt-get; `.ci/run`
installs them when missing) and the `selenium` package. The screenshots are kept under
$JAFLOW_TEST_ARTIFACTS (default: the session's pytest temp folder) and their paths printed.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from conftest import snakemake

pytestmark = pytest.mark.workflow

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(
            "headless Chromium not found: apt-get install -y chromium chromium-driver (.ci/run does)"
        )
    return browser, driver


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a driver on the network
    d = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def artifacts(tmp_path_factory) -> Path:
    root = Path(
        os.environ.get("JAFLOW_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts"
    )
    root.mkdir(parents=True, exist_ok=True)
    return root


def open_item(d, category: str, title: str):
    """Click the category in the menu, then the view button of the item titled `title`;
    return the frame's body element (the report shows HTML results in an iframe)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(d, 30)
    d.switch_to.default_content()
    back = d.find_elements(By.XPATH, "//nav//a[normalize-space()='Results']")  # a category is open
    if back:
        back[0].click()
    wait.until(
        ec.element_to_be_clickable((By.XPATH, f"//a[span[normalize-space()='{category}']]"))
    ).click()
    row = wait.until(
        ec.presence_of_element_located((By.XPATH, f"//tr[td[normalize-space()='{title}']]"))
    )
    row.find_element(By.XPATH, ".//a").click()
    frame = wait.until(ec.presence_of_element_located((By.TAG_NAME, "iframe")))
    d.switch_to.frame(frame)
    return wait.until(ec.presence_of_element_located((By.TAG_NAME, "body")))


def test_demo_report_opens_in_chromium(finished_demo, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By

    html = finished_demo / "report.html"
    snakemake(finished_demo, args=["--report", str(html)])
    out = artifacts(tmp_path_factory)
    d = browser
    d.get(html.as_uri())

    # the JGLUE table: every cell of the reproduced scores, as the table prints them
    body = open_item(d, "JGLUE", "JGLUE (jsquad exact_match, others acc)")
    cells = [
        c.text
        for c in body.find_elements(By.CSS_SELECTOR, "table.jaflow-table td, table.jaflow-table th")
    ]
    rows = list(
        csv.reader(
            (finished_demo / "results/demo/reports/demo/tables/jglue.csv").open(encoding="utf-8")
        )
    )
    assert rows[0] == cells[: len(rows[0])]
    for row in rows[1:]:
        for value in row:
            assert value in cells, (value, cells)
    (path,) = finished_demo.glob("results/demo/jglue/*/tiny_qlora/scores.csv")
    scores = {
        r["task"]: r for r in csv.DictReader(path.open(encoding="utf-8")) if r["metric"] == "acc"
    }
    assert f"{float(scores['marc_ja']['value']):.3f}" in " ".join(cells)
    assert "Made by report 'demo'" in body.find_element(By.CSS_SELECTOR, "p.caption").text
    d.switch_to.default_content()
    d.save_screenshot(str(out / "report_jglue.png"))

    # a model card, rendered (headings and text, not a README.md download)
    body = open_item(d, "Model cards", "Model card: tiny_qlora")
    text = body.text
    assert "QLoRA fine-tune of tiny_llama" in text and "Selected checkpoint: step" in text
    assert body.find_element(By.TAG_NAME, "h1").text == "Model card: tiny_qlora"
    d.switch_to.default_content()
    d.save_screenshot(str(out / "report_card.png"))

    # the MT-Bench radar chart: the image is decoded and has a size
    body = open_item(d, "MT-Bench", "MT-Bench radar chart (turn 1)")
    img = body.find_element(By.TAG_NAME, "img")
    width = d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
    assert width and width >= 400, width
    d.switch_to.default_content()
    shot = out / "report_radar.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"report screenshots: {out}")
