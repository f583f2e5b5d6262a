"""Toxiproxy's Python clients against a Toxiproxy API, each documented call in turn:
toxiproxy-python (`Toxiproxy`, `Proxy`) and chaostoolkit-toxiproxy (`chaostoxi`).

usage: python_flow.py API_HOST:PORT UPSTREAM_HOST:PORT
UPSTREAM echoes what it reads. Exits 0 when every call did what its client documents; else
an assertion names the call.
"""

import socket
import sys
import time

from toxiproxy import Toxiproxy
from toxiproxy.exceptions import NotFound, ProxyExists

api_host, api_port = sys.argv[1].rsplit(":", 1)
# A latency toxic's delay, and the bound a round trip with no toxic stays under: far apart,
# so that a busy machine (CI runs other tests beside this one) cannot blur the two.
LATENCY_MS = 2000
CLEAR_S = 1.5
upstream = sys.argv[2]


def round_trip_s(listen, payload=b"ping"):
    """Seconds for `payload` to come back through `listen`."""
    host, port = listen.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = conn.recv(len(payload) - len(got))
            assert chunk, "the proxy closed before the echo came back"
            got += chunk
    assert got == payload, got
    return time.monotonic() - started


def silent(listen):
    """Whether nothing comes back through `listen` within a second."""
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.settimeout(1.0)
        conn.sendall(b"ping")
        try:
            return conn.recv(4) == b""
        except socket.timeout:
            return True


def refused(listen):
    host, port = listen.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


# --- toxiproxy-python ---------------------------------------------------------------
server = Toxiproxy()
server.update_api_consumer(api_host, int(api_port))
assert server.running(), "running()"
assert b"2.8.0" in server.version(), server.version()

proxy = server.create(upstream=upstream, name="py_echo")
assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0"), proxy.listen
assert proxy.enabled is True
assert round_trip_s(proxy.listen) < CLEAR_S

try:
    server.create(upstream=upstream, name="py_echo")
    raise AssertionError("create() of an existing name did not raise ProxyExists")
except ProxyExists:
    pass

proxy.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
# An empty name is named <type>_<stream> by the server, as Toxiproxy does.
proxy.add_toxic(name="", type="latency", stream="upstream", attributes={"latency": 0})
toxics = proxy.toxics()
assert sorted(toxics) == ["latency_downstream", "latency_upstream"], sorted(toxics)
down = proxy.get_toxic("latency_downstream")
assert (down.type, down.stream, down.toxicity, down.attributes) == (
    "latency",
    "downstream",
    1,
    {"latency": LATENCY_MS, "jitter": 0},
), vars(down)
assert round_trip_s(proxy.listen) >= 0.95 * LATENCY_MS / 1000, "the latency toxic not applied"

proxy.destroy_toxic("latency_downstream")
proxy.destroy_toxic("latency_upstream")
assert proxy.toxics() == {}
assert round_trip_s(proxy.listen) < CLEAR_S

with proxy.down():
    assert refused(proxy.listen), "down() left the proxy listening"
    assert server.get_proxy("py_echo").enabled is False
assert server.get_proxy("py_echo").enabled is True
assert round_trip_s(proxy.listen) < CLEAR_S

proxy.add_toxic(type="timeout", attributes={"timeout": 0})
assert server.reset()
assert proxy.toxics() == {}, "reset() left toxics"

listen = proxy.listen
made = server.populate(
    [
        {"name": "py_echo", "upstream": upstream, "listen": listen},
        {"name": "py_other", "upstream": upstream, "listen": "127.0.0.1:0"},
    ]
)
assert [p.name for p in made] == ["py_other"], [p.name for p in made]
assert sorted(server.proxies()) == ["py_echo", "py_other"], sorted(server.proxies())
assert server.get_proxy("nope") is None

server.destroy_all()
assert server.proxies() == {}
try:
    proxy.destroy_toxic("latency_downstream")
    raise AssertionError("a toxic of a deleted proxy did not raise NotFound")
except NotFound:
    pass

# --- chaostoolkit-toxiproxy ---------------------------------------------------------
from chaostoxi.proxy import actions as proxies  # noqa: E402
from chaostoxi.toxic import actions as toxics_actions  # noqa: E402

configuration = {"toxiproxy_host": api_host, "toxiproxy_port": int(api_port)}
up_host, up_port = upstream.rsplit(":", 1)
assert proxies.create_proxy(
    proxy_name="ctk_echo",
    upstream_host=up_host,
    upstream_port=int(up_port),
    listen_host="127.0.0.1",
    configuration=configuration,
)
listen = "127.0.0.1:" + configuration["ctk_echo_PORT"]
assert round_trip_s(listen) < CLEAR_S
toxics_actions.create_latency_toxic(
    for_proxy="ctk_echo", toxic_name="slow", latency=LATENCY_MS, configuration=configuration
)
assert round_trip_s(listen) >= 0.95 * LATENCY_MS / 1000, "chaostoolkit's latency toxic not applied"
toxics_actions.delete_toxic(for_proxy="ctk_echo", toxic_name="slow", configuration=configuration)
assert round_trip_s(listen) < CLEAR_S
# create_toxic with no attributes sends "attributes": null: a timeout of 0, a black hole.
assert toxics_actions.create_toxic(
    for_proxy="ctk_echo", toxic_name="hold", toxic_type="timeout", configuration=configuration
)
assert silent(listen), "the null-attribute timeout toxic let data through"
toxics_actions.delete_toxic(for_proxy="ctk_echo", toxic_name="hold", configuration=configuration)
assert round_trip_s(listen) < CLEAR_S
proxies.disable_proxy(proxy_name="ctk_echo", configuration=configuration)
assert refused(listen)
proxies.enable_proxy(proxy_name="ctk_echo", configuration=configuration)
assert round_trip_s(listen) < CLEAR_S
proxies.reset(configuration=configuration)
proxies.delete_proxy(proxy_name="ctk_echo", configuration=configuration)
assert server.proxies() == {}

print("python clients: every call passed")
