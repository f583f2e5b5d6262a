// toxiproxy-node-client against a Toxiproxy API, each documented call in turn.
//
// usage: node node_flow.js API_HOST:PORT UPSTREAM_HOST:PORT CLIENT_MODULE_DIR
// UPSTREAM echoes what it reads. Exits 0 when every call did what the client documents;
// else an assertion names the call.
"use strict";
const assert = require("node:assert/strict");
const net = require("node:net");

const [api, upstream, moduleDir] = process.argv.slice(2);
// A latency toxic's delay, and the bound a round trip with no toxic stays under: far apart,
// so that a busy machine (CI runs other tests beside this one) cannot blur the two.
const LATENCY_MS = 2000;
const CLEAR_MS = 1500;
const { Toxiproxy, ToxiproxyError } = require(moduleDir);

/** Milliseconds for a ping to come back through `listen`. */
function roundTripMs(listen) {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), listen.slice(listen.lastIndexOf(":") + 1)];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const conn = net.createConnection({ host, port: Number(port) }, () => conn.write("ping"));
    let got = "";
    conn.setTimeout(5000, () => reject(new Error(`no echo through ${listen}`)));
    conn.on("data", (d) => {
      got += d;
      if (got.length >= 4) {
        conn.end();
        resolve(Number(process.hrtime.bigint() - started) / 1e6);
      }
    });
    conn.on("error", reject);
  });
}

/** Whether a connection to `listen` is refused. */
function refused(listen) {
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  return new Promise((resolve) => {
    const conn = net.createConnection({ host: "127.0.0.1", port }, () => {
      conn.destroy();
      resolve(false);
    });
    conn.on("error", () => resolve(true));
  });
}

async function main() {
  const toxiproxy = new Toxiproxy(`http://${api}`);
  assert.match(await toxiproxy.getVersion(), /2\.8\.0/);

  // The README's own example: listen on localhost:0.
  const proxy = await toxiproxy.createProxy({ listen: "localhost:0", name: "node_echo", upstream });
  assert.equal(proxy.name, "node_echo");
  assert.match(proxy.listen, /^127\.0\.0\.1:[1-9][0-9]*$/, "localhost resolved as Go does");
  assert.equal(proxy.enabled, true);
  assert.ok((await roundTripMs(proxy.listen)) < CLEAR_MS);

  await assert.rejects(
    toxiproxy.createProxy({ listen: "localhost:0", name: "node_echo", upstream }),
    (e) => e instanceof ToxiproxyError && /status code 409/.test(e.message),
    "a second proxy of the same name",
  );

  const toxic = await proxy.addToxic({ type: "latency", attributes: { latency: LATENCY_MS } });
  assert.deepEqual(toxic.toJson(), {
    attributes: { latency: LATENCY_MS, jitter: 0 },
    name: "latency_downstream",
    stream: "downstream",
    toxicity: 1,
    type: "latency",
  });
  assert.ok((await roundTripMs(proxy.listen)) >= 0.95 * LATENCY_MS, "the latency toxic not applied");
  const slower = await toxic.update({ attributes: { latency: LATENCY_MS + 100 } });
  assert.deepEqual(slower.attributes, { latency: LATENCY_MS + 100, jitter: 0 }, "a partial update");
  assert.equal(slower.toxicity, 1);
  const again = await proxy.getToxic("latency_downstream");
  assert.deepEqual(again.toJson(), slower.toJson());
  await again.remove();
  assert.ok((await roundTripMs(proxy.listen)) < CLEAR_MS);

  // Null attributes and an empty name, as Go's client sends them: the type's defaults.
  const bare = await proxy.addToxic({ name: "", type: "bandwidth", stream: "upstream", toxicity: 1, attributes: null });
  assert.deepEqual(bare.toJson(), {
    attributes: { rate: 0 },
    name: "bandwidth_upstream",
    stream: "upstream",
    toxicity: 1,
    type: "bandwidth",
  });
  await bare.remove();

  const down = await proxy.update({ enabled: false });
  assert.equal(down.enabled, false);
  assert.ok(await refused(proxy.listen), "a disabled proxy still listens");
  const up = await proxy.update({ enabled: true });
  assert.equal(up.enabled, true);
  assert.equal(up.listen, proxy.listen, "enabled again on its port");
  assert.ok((await roundTripMs(proxy.listen)) < CLEAR_MS);

  await proxy.addToxic({ type: "timeout", attributes: { timeout: 0 } });
  await toxiproxy.reset();
  assert.deepEqual((await toxiproxy.get("node_echo")).toJson(), proxy.toJson(), "reset keeps the proxy");

  const populated = await toxiproxy.populate([
    { name: "node_echo", listen: proxy.listen, upstream },
    { name: "node_other", listen: "127.0.0.1:0", upstream },
  ]);
  assert.deepEqual(Object.keys(populated).sort(), ["node_echo", "node_other"]);
  assert.deepEqual(Object.keys(await toxiproxy.getAll()).sort(), ["node_echo", "node_other"]);

  await proxy.remove();
  await populated.node_other.remove();
  assert.deepEqual(await toxiproxy.getAll(), {});
  await assert.rejects(toxiproxy.get("node_echo"), /status code 404/);
  console.log("node client: every call passed");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
