"""Every log supervisord writes is rotated (issue 18: a week of soak fills no disk): each program's
output, stderr included, and supervisord's own log. Checked on the rendered config, as supervisord
reads it (configparser), for the built-in topology and one with a broker pair."""
from __future__ import annotations

import configparser
from pathlib import Path

import yaml

from cluster.control import render_supervisord_conf
from topology.loader import default_topology_path, load_topology


def size(text: str) -> int:
    text = text.strip().upper()
    factor = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}.get(text[-2:], 1)
    return int(float(text[:-2] if factor > 1 else text) * factor)


def rendered(tmp_path: Path, pair: bool) -> configparser.RawConfigParser:
    data = yaml.safe_load(default_topology_path().read_text())
    if pair:
        data["broker"]["backup"] = {"address": "127.0.0.1", "router_port": 7810, "pub_port": 7811, "sub_port": 7812}
    source = tmp_path / "topology.yaml"
    source.write_text(yaml.safe_dump(data))
    parser = configparser.RawConfigParser()
    parser.read_string(render_supervisord_conf(load_topology(source), tmp_path))
    return parser


def test_every_program_and_supervisord_itself_log_to_rotated_files(tmp_path):
    for pair in (False, True):
        conf = rendered(tmp_path, pair)
        programs = [s for s in conf.sections() if s.startswith("program:")]
        assert len(programs) >= 6 + pair  # broker(s), 2 LIMs, 2 CSTA servers, the live view
        for section in programs:
            get = lambda key, default=None: conf.get(section, key, fallback=default)  # noqa: E731
            assert get("stdout_logfile", "").endswith(".log"), section
            assert 0 < size(get("stdout_logfile_maxbytes", "0")) <= 100 * 1024**2, section
            assert int(get("stdout_logfile_backups", "0")) >= 1, section
            # stderr goes to the same rotated file, or to one of its own that is rotated too
            if get("redirect_stderr", "false") != "true":
                assert get("stderr_logfile", "").endswith(".log"), section
                assert 0 < size(get("stderr_logfile_maxbytes", "0")), section
                assert int(get("stderr_logfile_backups", "0")) >= 1, section
        assert 0 < size(conf.get("supervisord", "logfile_maxbytes")) <= 100 * 1024**2
        assert int(conf.get("supervisord", "logfile_backups")) >= 1


def test_the_worst_case_disk_use_of_the_logs_is_bounded(tmp_path):
    conf = rendered(tmp_path, False)
    total = sum(size(conf.get(s, "stdout_logfile_maxbytes")) * (1 + int(conf.get(s, "stdout_logfile_backups")))
                for s in conf.sections() if s.startswith("program:"))
    total += size(conf.get("supervisord", "logfile_maxbytes")) * (1 + int(conf.get("supervisord", "logfile_backups")))
    assert total < 1024**3  # whatever runs for a week: under a gigabyte for the built-in topology
