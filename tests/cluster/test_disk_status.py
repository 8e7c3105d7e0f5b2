"""`mxone status` under supervisord for the faults of issue 18: a LIM that cannot persist (its data
folder full) is named with the reason, and a topology.yaml edited under the running exchange is
reported (the processes keep the frozen copy) and refused by a second `mxone up`."""
from __future__ import annotations

import json

from tests.disk import fill, tmpfs
from tests.procs import mxone, wait_for, write_topology


def status_json(run) -> dict:
    done = mxone("status", "--json", "--run-dir", str(run))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_names_a_lim_that_cannot_persist_and_an_edited_topology(tmp_path):
    run = tmp_path / "run"
    topology = write_topology(tmp_path / "exchange.yaml")
    with tmpfs(run / "data", "8m") as data:
        up = mxone("up", "--detach", "--run-dir", str(run), str(topology))
        assert up.returncode == 0, up.stderr
        try:
            filler = fill(data)
            phone = mxone("feature", "1000", "dnd", "on", "--run-dir", str(run))
            assert phone.returncode == 0, phone.stderr
            lim1 = status_json(run)["lims"][0]
            assert lim1["persist"].startswith("failing (disk full"), lim1
            text = mxone("status", "--run-dir", str(run)).stdout
            assert "LIM 1 persist: failing (disk full" in text, text
            filler.unlink()
            wait_for(lambda: status_json(run)["lims"][0]["persist"] == "ok", 15, "LIM 1 to write again")
            assert "persist" not in mxone("status", "--run-dir", str(run)).stdout

            assert status_json(run)["topology_changed"] is None
            edited = (run / "topology.yaml").read_text() + "\n# edited by hand\n"
            (run / "topology.yaml").write_text(edited)
            changed = status_json(run)["topology_changed"]
            assert changed and "differs from the topology the processes run" in changed
            assert "TOPOLOGY CHANGED" in mxone("status", "--run-dir", str(run)).stdout
            again = mxone("up", "--detach", "--run-dir", str(run), str(run / "topology.yaml"))
            assert again.returncode != 0 and "already running" in again.stderr and "differs" in again.stderr
            mxone("kill", "lim-2", "--run-dir", str(run))  # restarted by supervisord: from the frozen copy
            wait_for(lambda: status_json(run)["lims"][1]["state"] == "up" and
                     status_json(run)["lims"][1]["incarnation"] > 1, 20, "LIM 2 restarted")
        finally:
            mxone("down", "--run-dir", str(run))
    for log in (run / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name} has a traceback"
