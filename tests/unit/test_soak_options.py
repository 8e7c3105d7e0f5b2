"""`mxone soak`'s options (tools/soak.py): defaults, the warm-up, and one-line refusals."""
from __future__ import annotations

import pytest

from tools.soak import log_caps, make_soak_options


def test_defaults_and_the_warm_up():
    o = make_soak_options(seed=1)
    assert (o.duration, o.interval, o.rate, o.callcentre_rate, o.pct_per_hour) == (3600, 60, 1.0, 0.3, 10.0)
    assert o.warmup_s == 360  # a tenth of the run
    assert make_soak_options(duration=120, interval=5, seed=1).warmup_s == 12
    assert make_soak_options(duration=60, interval=10, seed=1).warmup_s == 20  # at least two intervals
    assert make_soak_options(duration=120, interval=5, warmup=0, seed=1).warmup_s == 0


@pytest.mark.parametrize("kwargs, words", [
    ({"duration": 5}, "--duration"), ({"duration": 60, "interval": 30}, "--interval"),
    ({"duration": 60, "interval": 5, "warmup": 60}, "--warmup"), ({"rate": -1}, "--rate"),
    ({"callcentre_rate": 100}, "--callcentre-rate"), ({"pct_per_hour": 0}, "--max-growth")])
def test_wrong_options_are_refused_naming_the_option(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_soak_options(**kwargs)


def test_log_caps_read_from_a_supervisord_config(tmp_path):
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\nlogfile=/r/logs/supervisord.log\nlogfile_maxbytes=20MB\n"
                    "[program:lim-1]\nstdout_logfile=/r/logs/lim-1.log\nstdout_logfile_maxbytes=1048576\n")
    assert log_caps(conf) == {"supervisord.log": 20 * 1024**2, "lim-1.log": 1024**2}
