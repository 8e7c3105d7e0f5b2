"""A scripted public-network number's behaviour read from a bus body (lim/pstn.py): seconds as a
number or as text, and anything else refused as a bad request, never a crash of the LIM."""
from __future__ import annotations

import pytest

from broker.protocol import Refusal
from lim.errors import Refused
from lim.pstn import Behaviour


@pytest.mark.parametrize("after_s, seconds", [(None, 0.0), (3, 3.0), (2.5, 2.5), ("4", 4.0), (True, 1.0)])
def test_after_s_is_read_as_seconds(after_s, seconds):
    assert Behaviour.parse("answer", after_s) == Behaviour("answer", seconds)


@pytest.mark.parametrize("after_s", ["soon", [3], {"s": 3}, -1, 86_401, float("nan")])
def test_anything_else_is_a_bad_request(after_s):
    with pytest.raises(Refused) as refused:
        Behaviour.parse("answer", after_s)
    assert refused.value.code == Refusal.BAD_REQUEST
    assert "after_s" in refused.value.message


def test_an_unknown_behaviour_is_a_bad_request():
    with pytest.raises(Refused) as refused:
        Behaviour.parse("hums", 1)
    assert refused.value.code == Refusal.BAD_REQUEST
