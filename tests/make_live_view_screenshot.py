"""Make docs/live-view.png: a throwaway exchange on free ports, a busy moment scripted at its
phones (calls across LIMs, out to the public network, a held call, an ACD queue, agents, a CSTA
client monitoring two devices), and the live view shot in headless chromium.

    .venv/bin/python -m tests.make_live_view_screenshot [OUTPUT.png]
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from csta_front.client import CstaClient
from liveview.client import url_of
from tests.browser import chromium
from cluster.exchange import running_exchange

ROOT = Path(__file__).resolve().parents[1]


def busy_moment(exchange) -> None:
    phone = exchange.phone
    phone("2005").agent("login", "41", "5000")
    phone("1006").agent("login", "42", "5000")
    phone("1006").agent("notready")
    phone("0701234567").dial("5000")   # goes to agent 41 at 2005 ...
    phone("2005").answer()
    phone("0709998877").dial("5000")   # ... and this one waits in the queue
    phone("1000").dial("2000")
    phone("2000").answer()
    phone("2002").dial("1002")
    phone("1002").answer()
    phone("2002").consult("1004")      # 1002 on hold, 1004 ringing
    phone("1003").dial("0705551234")   # out over the trunk
    phone("1001").dial("2001")         # ringing: the phone selected on the page
    phone("1012").logon()


async def shoot(exchange, output: Path, profile: Path) -> None:
    host, port = exchange.csta_endpoint(1)
    async with await CstaClient.connect(host, port) as csta:
        for device in ("1000", "2001"):
            await csta.monitor_start(device)
        with chromium(profile, width=1400, height=1250) as browser:
            wait = WebDriverWait(browser, 20, poll_frequency=0.1)
            browser.get(url_of(exchange.topology.live_view))
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '[data-device="2001"][data-state="alerting"]'))
            wait.until(lambda b: "monitoring 1000, 2001" in b.find_element(By.CSS_SELECTOR, '[data-csta="1"]').text)
            browser.find_element(By.CSS_SELECTOR, '[data-device="2001"]').click()
            wait.until(lambda b: b.find_element(By.ID, "panel").is_displayed())
            browser.find_element(By.ID, "dial-number").send_keys("1004")
            browser.save_screenshot(str(output))


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "live-view.png"
    with tempfile.TemporaryDirectory() as tmp:
        with running_exchange(run_dir=Path(tmp) / "exchange", free_ports=True) as exchange:
            busy_moment(exchange)
            asyncio.run(shoot(exchange, output, Path(tmp) / "profile"))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
