// The live view's page: a `snapshot` event gives the whole view, `patch` events what changed
// (whole sections, devices one by one). Everything shown is built with textContent, never as HTML.
"use strict";

const view = { lims: [], calls: [], groups: [], broker: {}, devices: new Map() };
const tiles = new Map();   // device number -> its tile
let selected = null;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

const STATE_NAMES = { alerting: "ringing", initiated: "off hook", connected: "connected", hold: "on hold",
                      queued: "queued", fail: "failed", idle: "idle", outOfService: "out of service" };
const AGENT_NAMES = { agentReady: "ready", agentNotReady: "not ready", agentBusy: "busy",
                      agentWorkingAfterCall: "wrap-up" };

// Bound beyond loopback, the view asks for a token: the address `mxone status` prints carries it
// (?token=), and the page sends it with each request it makes.
const TOKEN = new URLSearchParams(location.search).get("token");

// -- the event stream ------------------------------------------------------------------------------
function connect() {
  const link = document.getElementById("link");
  const source = new EventSource("/api/events" + (TOKEN ? "?token=" + encodeURIComponent(TOKEN) : ""));
  source.addEventListener("open", () => { link.textContent = "live"; link.className = "link live"; });
  source.addEventListener("error", () => { link.textContent = "reconnecting…"; link.className = "link lost"; });
  source.addEventListener("snapshot", (e) => {
    const snap = JSON.parse(e.data);
    document.getElementById("exchange").textContent = "— " + snap.exchange;
    document.title = "MX-ONE live view: " + snap.exchange;
    view.devices = new Map(snap.devices.map((d) => [d.number, d]));
    Object.assign(view, { lims: snap.lims, calls: snap.calls, groups: snap.groups, broker: snap.broker });
    renderDevicesAll(); renderLims(); renderCalls(); renderGroups(); renderPanel();
  });
  source.addEventListener("patch", (e) => {
    const patch = JSON.parse(e.data);
    if (patch.broker) view.broker = patch.broker;
    if (patch.lims) view.lims = patch.lims;
    if (patch.calls) { view.calls = patch.calls; renderCalls(); }
    if (patch.groups) view.groups = patch.groups;
    for (const device of patch.devices || []) { view.devices.set(device.number, device); renderTile(device); }
    if (patch.lims || patch.devices || patch.broker) renderLims();      // its counts of devices in calls
    if (patch.groups || patch.calls) renderGroups();  // a queued call shows its caller
    renderPanel();
  });
}

// -- LIMs ------------------------------------------------------------------------------------------
function renderLims() {
  const box = document.getElementById("lims");
  box.replaceChildren();
  if (view.broker && view.broker.reachable === false)
    box.append(el("div", { class: "card", "data-broker": "unreachable" },
      el("div", { class: "title" }, "Broker", el("span", { class: "badge dead", text: "not reachable" }))));
  for (const lim of view.lims) {
    const csta = lim.csta;
    let server = "no CSTA server running";
    if (csta && csta.error) server = "CSTA server not answering: " + csta.error;
    else if (csta) {
      const monitored = csta.monitored_devices.length ? csta.monitored_devices.join(", ") : "none";
      server = `CSTA ${csta.server_type} :${csta.port}: ${csta.sessions} session${csta.sessions === 1 ? "" : "s"}` +
               `; monitoring ${monitored}` + (csta.faults.length ? `; FAULTS: ${csta.faults.join("; ")}` : "");
    }
    const devices = [...view.devices.values()].filter((d) => d.lim === lim.number);
    const busy = devices.filter((d) => Object.keys(d.calls).length).length;
    box.append(el("div", { class: "card", "data-lim": String(lim.number), "data-state": lim.state },
      el("div", { class: "title" }, `LIM ${lim.number}`, el("span", { class: "badge " + lim.state, text: lim.state }),
        el("span", { class: "quiet", text: lim.address })),
      el("div", { class: "line", text: `${devices.length} extensions, ${busy} in calls` +
                                        (lim.incarnation != null ? `; incarnation ${lim.incarnation}` : "") }),
      el("div", { class: "line csta", "data-csta": String(lim.number), text: server })));
  }
}

// -- calls -----------------------------------------------------------------------------------------
function renderCalls() {
  const body = document.querySelector("#calls tbody");
  body.replaceChildren();
  for (const call of view.calls) {
    const parties = el("td");
    for (const p of call.parties) {
      parties.append(el("span", { class: "chip state-" + p.state, "data-party": p.device, "data-state": p.state },
        p.device + " ", el("small", { text: (STATE_NAMES[p.state] || p.state) + (p.lim != null ? ` · LIM ${p.lim}` : "") })));
    }
    body.append(el("tr", { "data-call": call.call_id },
      el("td", { class: "mono", text: call.call_id }),
      el("td", { text: call.controller != null ? `LIM ${call.controller}` : "?" }),
      parties,
      el("td", { text: call.last_event || "" }),
      el("td", { class: "duration", "data-since": call.since != null ? String(call.since) : "" })));
  }
  document.getElementById("call-count").textContent = String(view.calls.length);
  document.getElementById("no-calls").hidden = view.calls.length > 0;
  tickDurations();
}

function tickDurations() {
  const now = Date.now() / 1000;
  for (const cell of document.querySelectorAll("td.duration")) {
    const since = parseFloat(cell.dataset.since);
    if (Number.isNaN(since)) { cell.textContent = ""; continue; }
    const s = Math.max(0, Math.floor(now - since));
    cell.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
}

// -- ACD groups ------------------------------------------------------------------------------------
function renderGroups() {
  const box = document.getElementById("groups");
  box.replaceChildren();
  if (!view.groups.length) box.append(el("p", { class: "quiet", text: "No ACD groups." }));
  const callers = new Map(view.calls.map((c) => [c.call_id, c.calling]));
  for (const group of view.groups) {
    const queue = el("div", { class: "line" }, `queue (${group.queue.length}): `);
    if (!group.queue.length) queue.append("empty");
    for (const id of group.queue)
      queue.append(el("span", { class: "chip state-queued", "data-queued": id, text: callers.get(id) || id.slice(-6) }));
    const agents = el("div", { class: "line" }, "agents: ");
    if (!group.agents.length) agents.append("none logged on");
    for (const a of group.agents)
      agents.append(el("span", { class: "chip agent-" + a.state, "data-agent": a.device },
        `${a.device} `, el("small", { text: `${a.agent_id || "?"} · ${AGENT_NAMES[a.state] || a.state || "logged on"}` })));
    box.append(el("div", { class: "card", "data-group": group.number },
      el("div", { class: "title" }, `ACD ${group.number}`, el("span", { class: "quiet", text: `LIM ${group.lim}` })),
      queue, agents,
      el("div", { class: "line", text: `positions: ${group.positions.join(", ")}` })));
  }
}

// -- devices ---------------------------------------------------------------------------------------
function renderDevicesAll() {
  const box = document.getElementById("devices");
  box.replaceChildren();
  tiles.clear();
  const byLim = new Map();
  for (const device of view.devices.values()) {
    if (!byLim.has(device.lim)) byLim.set(device.lim, []);
    byLim.get(device.lim).push(device);
  }
  for (const [lim, devices] of [...byLim.entries()].sort((a, b) => a[0] - b[0])) {
    const grid = el("div", { class: "grid" });
    for (const device of devices) {
      const tile = el("div", { class: "device", "data-device": device.number, tabIndex: 0 });
      tile.addEventListener("click", () => select(device.number));
      tile.addEventListener("keydown", (e) => { if (e.key === "Enter") select(device.number); });
      tiles.set(device.number, tile);
      grid.append(tile);
      renderTile(device);
    }
    box.append(el("div", { class: "lim-devices" }, el("h3", { text: `LIM ${lim}` }), grid));
  }
}

function renderTile(device) {
  const tile = tiles.get(device.number);
  if (!tile) return;
  let sub = STATE_NAMES[device.state] || device.state;
  const others = Object.values(device.calls).length;
  if (others > 1) sub += ` (+${others - 1})`;
  if (device.agent) sub = (AGENT_NAMES[device.agent.state] || "agent") + (device.state === "idle" ? "" : ` · ${sub}`);
  tile.className = `device state-${device.state}` + (device.lim_up ? "" : " lim-down") + (device.agent ? " agent" : "") +
                   (selected === device.number ? " selected" : "");
  tile.dataset.state = device.state;
  tile.title = `${device.number}: ${device.type} extension on LIM ${device.lim}` + (device.logged_on ? "" : ", no terminal logged on") +
               (device.agent ? `; agent ${device.agent.agent_id} of ACD ${device.agent.group}` : "");
  tile.replaceChildren(el("div", { class: "head" }, el("span", { class: "num", text: device.number }),
                                                   el("span", { class: "type", text: device.type })),
                       el("div", { class: "sub", text: sub }));
}

// -- working a phone -------------------------------------------------------------------------------
function select(number) {
  const previous = selected;
  selected = number;
  for (const n of [previous, number]) if (n && view.devices.has(n)) renderTile(view.devices.get(n));
  document.getElementById("panel-result").textContent = "";
  renderPanel();
}

function renderPanel() {
  const panel = document.getElementById("panel");
  const device = selected && view.devices.get(selected);
  panel.hidden = !device;
  if (!device) return;
  panel.dataset.device = device.number;
  document.getElementById("panel-device").textContent = `${device.number} (LIM ${device.lim}, ${device.type})`;
  const label = document.getElementById("panel-state");
  label.textContent = STATE_NAMES[device.state] || device.state;
  label.className = "state-label state-" + device.state;
}

async function act(action, number) {
  const result = document.getElementById("panel-result");
  const device = selected;
  result.className = "result";
  result.textContent = `${device}: ${action}…`;
  let reply;
  try {
    const response = await fetch("/api/phone", {
      method: "POST", headers: { "content-type": "application/json", ...(TOKEN ? { "x-mxone-token": TOKEN } : {}) },
      body: JSON.stringify(number ? { device, action, number } : { device, action }) });
    reply = await response.json();
  } catch (err) {
    reply = { ok: false, message: "the live view did not answer (" + err + ")" };
  }
  result.className = "result " + (reply.ok ? "ok" : "refused");
  result.textContent = reply.ok ? `${device}: ${action}${number ? " " + number : ""}: done` : `${device}: ${reply.message}`;
}

document.querySelectorAll("#panel button[data-action]").forEach((button) =>
  button.addEventListener("click", () => act(button.dataset.action)));
document.getElementById("dial-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act("dial", document.getElementById("dial-number").value.trim());
});
document.getElementById("panel-close").addEventListener("click", () => {
  const previous = selected;
  selected = null;
  if (previous && view.devices.has(previous)) renderTile(view.devices.get(previous));
  renderPanel();
});
setInterval(tickDurations, 1000);
connect();
