"""MXONE_WIRE_LOG reaches the CSTA servers supervisord starts: the suite's schema check sees them."""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from csta_front import wiretap
from csta_front.client import CstaClient

pytestmark = pytest.mark.cluster


def _parent(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def test_supervised_csta_server_writes_the_wire_log(cluster, mxone_exchange):
    directory = Path(os.environ[wiretap.ENV])
    supervisord = int((mxone_exchange.run_dir / "supervisord.pid").read_text())
    # This exchange's CSTA servers: the wire directory is the whole run's, other tests' servers wrote there too.
    servers = {p["pid"] for p in cluster.processes() if p["name"].startswith("csta-") and p["pid"]}
    assert servers and all(_parent(pid) == supervisord for pid in servers)
    host, port = mxone_exchange.csta_endpoint(1)

    async def ask() -> str | None:
        async with await CstaClient.connect(host, port) as csta:
            return await csta.request_system_status()
    assert asyncio.run(ask()) == "normal"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [json.loads(line) for path in directory.glob("wire-*.log") for line in path.read_text().splitlines()]
        served = [r for r in records if "RequestSystemStatusResponse" in r["xml"] and r["pid"] in servers]
        if served:
            break
        time.sleep(0.05)
    assert served, "no CSTA server of the supervised exchange wrote to the wire log"
