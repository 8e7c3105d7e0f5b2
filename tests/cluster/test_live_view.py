"""The live view in a real headless browser (Debian's chromium, driven by selenium) against the
exchange under supervisord: the page shows a call placed with `mxone phone`, and clicks on the
page answer it, are refused with the exchange's reason, dial and hang up."""
from __future__ import annotations

import json
import re

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.procs import mxone, wait_for

pytestmark = pytest.mark.cluster

WAIT_S = 30  # a shared, sometimes very busy machine: generous, and every wait polls


def status(run_dir) -> dict:
    result = mxone("status", "--json", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def connections(run_dir) -> list[list[tuple[str, str]]]:
    return [[(c["device"], c["state"]) for c in call["connections"]] for call in status(run_dir)["calls"]]


def test_the_page_shows_a_call_and_a_click_answers_it(cluster, tmp_path):
    run_dir = cluster.run_dir
    printed = mxone("status", "--run-dir", str(run_dir))
    url = re.search(r"^Live view: (http://\S+)$", printed.stdout, re.M).group(1)
    assert status(run_dir)["live_view"]["url"] == url and status(run_dir)["live_view"]["listening"]

    with chromium(tmp_path / "profile") as browser:
        # The page re-renders a call's rows as it changes: an element found in one poll may be gone
        # by the next read of it (stale), which is a poll to repeat, not a failure.
        wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
        browser.get(url)

        def tile(number: str):
            return browser.find_element(By.CSS_SELECTOR, f'[data-device="{number}"]')

        def party(number: str) -> str | None:
            found = browser.find_elements(By.CSS_SELECTOR, f'#calls [data-party="{number}"]')
            return found[0].get_attribute("data-state") if found else None

        wait.until(lambda b: b.find_element(By.ID, "link").text == "live" and tile("2049"))
        assert browser.find_element(By.CSS_SELECTOR, '[data-lim="2"]').get_attribute("data-state") == "up"
        assert browser.find_element(By.ID, "no-calls").is_displayed()

        # A call placed from the command line shows up, across the two LIMs.
        placed = mxone("phone", "1000", "dial", "2000", "--run-dir", str(run_dir))
        assert placed.returncode == 0, placed.stderr
        wait.until(lambda b: tile("2000").get_attribute("data-state") == "alerting" and party("2000") == "alerting")
        assert party("1000") == "connected" and tile("1000").get_attribute("data-state") == "connected"
        assert "LIM 2" in browser.find_element(By.CSS_SELECTOR, '#calls [data-party="2000"]').text

        # A click on the ringing phone, then on Answer: the exchange has the call established.
        tile("2000").click()
        wait.until(lambda b: b.find_element(By.ID, "panel").is_displayed())
        browser.find_element(By.ID, "act-answer").click()
        wait.until(lambda b: b.find_element(By.ID, "panel-result").text == "2000: answer: done")
        assert connections(run_dir) == [[("1000", "connected"), ("2000", "connected")]]
        wait.until(lambda b: party("2000") == "connected" and tile("2000").get_attribute("data-state") == "connected")

        # A phone that is not ringing cannot answer: the page says why.
        tile("2003").click()
        browser.find_element(By.ID, "act-answer").click()
        wait.until(lambda b: b.find_element(By.ID, "panel-result").text == "2003: 2003 is not ringing")

        # Dial from the page, and hang up from the page.
        tile("1001").click()
        browser.find_element(By.ID, "dial-number").send_keys("2001")
        browser.find_element(By.ID, "act-dial").click()
        wait.until(lambda b: party("2001") == "alerting")
        assert [("1001", "connected"), ("2001", "alerting")] in connections(run_dir)
        browser.find_element(By.ID, "act-hangup").click()
        wait.until(lambda b: party("2001") is None and party("1001") is None)
        assert connections(run_dir) == [[("1000", "connected"), ("2000", "connected")]]

        hung_up = mxone("phone", "1000", "hangup", "--run-dir", str(run_dir))
        assert hung_up.returncode == 0, hung_up.stderr
        wait.until(lambda b: b.find_element(By.ID, "no-calls").is_displayed())
        assert wait_for(lambda: status(run_dir)["calls"] == [], WAIT_S, "no calls")
        # No script error; the one failed request is the refused answer, a 409 by design.
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
                  and not (e["source"] == "network" and "/api/phone" in e["message"] and "409" in e["message"])]
        assert errors == [], errors
