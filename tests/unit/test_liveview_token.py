"""The live view's token: when it is asked for (bound beyond loopback), where a request may carry
it, and how a request without it or with another is refused."""
from __future__ import annotations

import stat

import pytest

from liveview.api import ApiError, check_token
from liveview.client import needs_token, read_token, url_of, write_token
from topology.model import LiveView


@pytest.mark.parametrize("address, asked", [
    ("127.0.0.1", False), ("127.0.1.5", False), ("::1", False), ("localhost", False),  # 127/8, ::1 (RFC 1122, 4291)
    ("0.0.0.0", True), ("::", True), ("192.0.2.2", True), ("10.1.2.3", True), ("fe80::1", True),
    ("view.example.org", True),  # a name may resolve to anything
])
def test_a_token_is_asked_for_beyond_loopback_only(address, asked):
    assert needs_token(address) is asked


def refused(expected, path="/api/state", headers=None, query="") -> ApiError:
    with pytest.raises(ApiError) as caught:
        check_token(expected, path, headers or {}, query)
    return caught.value


def test_a_request_without_the_token_or_with_another_is_refused_with_401():
    missing = refused("s3cret")
    assert (missing.status, missing.code) == (401, "token_required")
    assert "X-MXONE-Token" in missing.message and "mxone status" in missing.message
    for headers, query in (({"x-mxone-token": "s3cre"}, ""), ({}, "token=s3cret2"),
                           ({"authorization": "Bearer nope"}, ""), ({"authorization": "Basic czNjcmV0"}, "")):
        wrong = refused("s3cret", headers=headers, query=query)
        assert wrong.status == 401
    assert refused("s3cret", path="/api/phone").status == 401
    assert refused("s3cret", path="/api/events", query="other=1").status == 401


def test_the_token_in_a_header_a_bearer_or_the_query_is_accepted():
    for headers, query in (({"x-mxone-token": "s3cret"}, ""), ({"authorization": "Bearer s3cret"}, ""),
                           ({}, "token=s3cret"), ({}, "a=1&token=s3cret")):
        check_token("s3cret", "/api/state", headers, query)


def test_no_token_is_asked_on_loopback_nor_for_the_pages_own_files():
    check_token(None, "/api/phone", {}, "")
    for path in ("/", "/index.html", "/app.js", "/style.css"):
        check_token("s3cret", path, {}, "")


def test_the_token_file_is_the_owners_only_and_new_at_each_write(tmp_path):
    path = tmp_path / "live_view.token"
    first = write_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_token(path) == first and len(first) >= 32
    assert write_token(path) != first
    assert read_token(tmp_path / "none") is None


def test_the_address_carries_the_token():
    assert url_of(LiveView("0.0.0.0", 8890), "a+b/c") == "http://0.0.0.0:8890/?token=a%2Bb%2Fc"
    assert url_of(LiveView("127.0.0.1", 8890)) == "http://127.0.0.1:8890/"
