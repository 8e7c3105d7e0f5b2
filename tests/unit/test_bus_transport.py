"""Which transport a node uses to reach the broker: ipc:// for a broker on loopback (both ends on
this host), TCP otherwise; and the broker answers on both."""
from __future__ import annotations

import zmq

from broker.transport import ipc_url, node_url
from topology.model import BrokerEndpoint


def test_a_broker_on_loopback_is_reached_over_a_unix_socket_named_by_address_and_port():
    ep = BrokerEndpoint(address="127.0.0.1", router_port=47800, pub_port=47801, sub_port=47802)
    urls = {which: node_url(ep, which) for which in ("router", "pub", "sub")}
    assert all(u.startswith("ipc://") for u in urls.values())
    assert len(set(urls.values())) == 3 and urls["router"].endswith("-127.0.0.1-47800")
    assert node_url(BrokerEndpoint(address="::1"), "sub").startswith("ipc://")


def test_a_broker_on_another_address_or_a_host_name_is_reached_over_tcp():
    for address in ("10.1.0.1", "192.0.2.7", "broker.example", "fd00::1"):
        ep = BrokerEndpoint(address=address)
        assert ipc_url(ep, "router") is None
        assert node_url(ep, "router") == ep.url("router")


def test_the_broker_serves_tcp_and_ipc_clients_alike(tmp_path):
    from broker.process import Broker
    from broker.timers import FakeClock, TimerQueue
    from topology.loader import load_topology
    from topology.ports import free_ports
    from pathlib import Path
    import dataclasses
    topo = load_topology(Path(__file__).resolve().parents[2] / "topology" / "default.yaml")
    r, p, s = free_ports(3)
    ep = BrokerEndpoint(address="127.0.0.1", router_port=r, pub_port=p, sub_port=s)
    topo = dataclasses.replace(topo, broker=dataclasses.replace(topo.broker, primary=ep))
    ctx = zmq.Context()
    broker = Broker(topo, ctx=ctx, timers=TimerQueue(FakeClock()))
    broker.bind()
    try:
        for url in (ep.url("router"), ipc_url(ep, "router")):
            dealer = ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.IDENTITY, b"cli-t")
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(url)
            from broker.envelope import Envelope, decode
            dealer.send_multipart(Envelope(kind="status", src="cli-t", dst="broker", msg_id=1).frames())
            for _ in range(200):
                broker.poll_once(0.01)
                if dealer.poll(0):
                    break
            reply = decode(dealer.recv_multipart(zmq.NOBLOCK))
            assert reply.reply_to == 1 and reply.body["ok"]
            dealer.close(0)
    finally:
        broker.close()
        ctx.term()
    assert not Path(ipc_url(ep, "router").removeprefix("ipc://")).exists()  # nothing left in /tmp
