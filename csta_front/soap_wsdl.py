"""The CSTA Web Service's WSDL (csta_front/wsdl/csta.wsdl), served with the address a client used."""
from __future__ import annotations

from importlib import resources
from xml.sax.saxutils import quoteattr


def load_wsdl() -> bytes:
    return (resources.files("csta_front") / "wsdl" / "csta.wsdl").read_bytes()


class Wsdl:
    """The shipped WSDL with its service address replaced per request."""
    PLACEHOLDER = b'location="http://localhost:8882/csta"'

    def __init__(self, data: bytes):
        if data.count(self.PLACEHOLDER) != 1:
            raise ValueError("the WSDL must name its service address exactly once as " + self.PLACEHOLDER.decode())
        self.before, _, self.after = data.partition(self.PLACEHOLDER)

    def render(self, address: str) -> bytes:
        return self.before + b"location=" + quoteattr(address).encode("utf-8") + self.after
