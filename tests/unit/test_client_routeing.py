"""The bundled client's routeing requests (csta_front/client.py) are documents the standard
defines: RouteRegister, RouteRegisterCancel, RouteSelect and RouteEnd as they go on the wire, checked
against the ECMA-323 schema facts, in ed3 and ed6; RouteSelect and RouteEnd wait for no response."""
from __future__ import annotations

import asyncio

import pytest

from csta_front.client import ED3, ED6, CstaClient
from csta_front.framing import FrameDecoder
from tests.ecma323_validator import validate


class Wire:
    """A writer that keeps what the client sends."""

    def __init__(self):
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


@pytest.mark.parametrize("ns", [ED3, ED6])
def test_routeing_requests_are_schema_documents(ns):
    async def scenario():
        reader = asyncio.StreamReader()
        wire = Wire()
        client = CstaClient(reader, wire, ns)
        one = await client.route_select("2-1-7", "2005", register_id="1-1-1", route_used_req=True)
        two = await client.route_select("2-1-7", "5000")
        three = await client.route_end("2-1-8")
        assert len({one, two, three}) == 3  # each its own invoke ID, for the refusal that may come
        for request in (client.route_register("7000"), client.route_register(), client.route_register_cancel("1-1-1")):
            try:
                await asyncio.wait_for(request, 0.01)  # no server: only what it sends matters here
            except asyncio.TimeoutError:
                pass
        reader.feed_eof()
        await client.close()
        return [frame.xml for frame in FrameDecoder().feed(wire.data)]
    documents = asyncio.run(scenario())
    assert len(documents) == 6
    for xml in documents:
        assert validate(xml) == [], xml
    assert b"<routeSelected>2005</routeSelected><routeUsedReq>true</routeUsedReq>" in documents[0]
    assert b"<routeRegisterReqID>" not in documents[1] and b"routeUsedReq" not in documents[1]
    assert b"<errorValue><unspecified/></errorValue>" in documents[2]
    assert b"<routeingDevice>7000</routeingDevice>" in documents[3] and b"routeingDevice" not in documents[4]
