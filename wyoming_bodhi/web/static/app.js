// The status page: one live WebSocket for what the server does, one for the microphone test.
// Every URL is relative to the page, so it works under Home Assistant's ingress prefix.
"use strict";

const $ = (id) => document.getElementById(id);

function socketUrl(path) {
  const url = new URL(path, document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

const state = { engines: [], counts: null, recent: [] };

// -- live updates -----------------------------------------------------------------------

let retryDelay = 1000;

function connectLive() {
  const ws = new WebSocket(socketUrl("api/live"));
  ws.onopen = () => {
    retryDelay = 1000;
    setLive(true);
  };
  ws.onmessage = (message) => {
    const update = JSON.parse(message.data);
    if (update.type === "snapshot") showSnapshot(update);
    else if (update.type === "request") addRequest(update.request, update.counts);
    else if (update.type === "counts") showCounts(update.counts);
    else if (update.type === "check") showCheck(update);
    if ("active_sessions" in update) showSessions(update.active_sessions);
  };
  ws.onclose = () => {
    setLive(false);
    setTimeout(connectLive, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15000);
  };
}

function setLive(on) {
  const badge = $("live");
  badge.textContent = on ? "live" : "reconnecting…";
  badge.className = "badge " + (on ? "on" : "off");
}

function showSnapshot(snapshot) {
  $("version").textContent = snapshot.version;
  $("demo").hidden = !snapshot.demo;
  state.maxSessions = snapshot.max_sessions;
  showEngines(snapshot.engines);
  showLanguages(snapshot.engines);
  state.recent = [];
  $("recent").tBodies[0].replaceChildren();
  for (const request of snapshot.recent.slice().reverse()) addRequest(request, null);
  showCounts(snapshot.counts);
  showSessions(snapshot.active_sessions);
  showConfiguration(snapshot.configuration);
}

function showSessions(active) {
  $("sessions").textContent = `${active} request(s) in progress (at most ${state.maxSessions}).`;
}

// -- engines ----------------------------------------------------------------------------

function showEngines(engines) {
  state.engines = engines;
  const cards = engines.map((engine) => {
    const card = element("div", null, "card");
    card.append(element("h3", engine.title));
    card.append(element("p", engine.url));
    card.append(element("p", `${engine.audio}; ${engine.credentials}`));
    const languages = [...new Set(engine.models.flatMap((model) => model.languages))];
    card.append(element("p", `${engine.models.length} model(s): ${languages.join(", ")}`));
    const button = element("button", "Check");
    button.type = "button";
    button.dataset.engine = engine.name;
    button.addEventListener("click", () => checkEngine(engine.name, button));
    card.append(button);
    const result = element("p", "", "result");
    result.id = `check-${engine.name}`;
    result.setAttribute("role", "status");
    card.append(result);
    return card;
  });
  $("engines").replaceChildren(...cards);
}

async function checkEngine(name, button) {
  button.disabled = true;
  const result = $(`check-${name}`);
  result.className = "result";
  result.textContent = "Checking…";
  try {
    const response = await fetch(new URL(`api/check/${encodeURIComponent(name)}`, document.baseURI),
      { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    const body = await response.json();
    if (body.type === "check") showCheck(body);
    else showCheck({ engine: name, ok: false, summary: body.error || `HTTP ${response.status}` });
  } catch (error) {
    showCheck({ engine: name, ok: false, summary: `The check could not be made: ${error}` });
  } finally {
    button.disabled = false;
  }
}

function showCheck(check) {
  const result = $(`check-${check.engine}`);
  if (!result) return;
  result.textContent = check.summary;
  result.className = "result " + (check.ok ? "ok" : "bad");
}

// -- requests and counts ----------------------------------------------------------------

function addRequest(request, counts) {
  const row = element("tr");
  const when = new Date(request.started_at * 1000);
  row.append(element("td", when.toLocaleTimeString()));
  row.append(element("td", request.client));
  row.append(element("td", [request.language, request.model].filter(Boolean).join(" · ")));
  row.append(element("td", `${request.audio_seconds.toFixed(1)} s`, "num"));
  row.append(element("td", request.latency === null ? "–" : `${Math.round(request.latency * 1000)} ms`, "num"));
  const ok = request.result === "transcript";
  const cell = element("td", ok ? request.text || "(nothing recognised)" : `${request.result}: ${request.text}`);
  cell.className = ok ? "" : "bad";
  row.append(cell);
  const body = $("recent").tBodies[0];
  body.prepend(row);
  while (body.rows.length > 50) body.deleteRow(body.rows.length - 1);
  $("recent-empty").hidden = body.rows.length > 0;
  if (counts) showCounts(counts);
}

function showCounts(counts) {
  const results = Object.entries(counts.results).sort((a, b) => b[1] - a[1]);
  $("results").replaceChildren(...(results.length
    ? results.map(([result, count]) => element("li", `${result}: ${count}`, result === "transcript" ? "ok" : "bad"))
    : [element("li", "none yet")]));
  const failures = Object.entries(counts.handshake_failures);
  $("failures").replaceChildren(...(failures.length
    ? failures.map(([what, count]) => element("li", `${what}: ${count}`, "bad"))
    : [element("li", "none")]));
  drawHistogram(counts.latency_buckets, counts.latency_counts);
}

function drawHistogram(buckets, values) {
  const top = Math.max(1, ...values);
  const chart = $("histogram");
  const bars = values.map((count, i) => {
    const bar = element("div", null, "bar");
    bar.style.height = `${(100 * count) / top}%`;
    const label = i < buckets.length ? `≤ ${buckets[i] * 1000} ms` : `> ${buckets[buckets.length - 1]} s`;
    bar.title = `${label}: ${count}`;
    return bar;
  });
  chart.replaceChildren(...bars);
  const labels = element("div", null, "histogram-labels");
  labels.append(...values.map((_, i) => element("span", i < buckets.length ? formatSeconds(buckets[i]) : "more")));
  chart.nextElementSibling?.classList.contains("histogram-labels")
    ? chart.nextElementSibling.replaceWith(labels)
    : chart.after(labels);
}

function formatSeconds(seconds) {
  return seconds < 1 ? `${seconds * 1000}` : `${seconds}s`;
}

function showConfiguration(configuration) {
  const rows = Object.entries(configuration).map(([name, value]) => {
    const row = element("tr");
    row.append(element("td", name));
    row.append(element("td", Array.isArray(value) ? value.join(", ") || "–" : value === null ? "–" : String(value)));
    return row;
  });
  $("config").tBodies[0].replaceChildren(...rows);
}

// -- the microphone test ----------------------------------------------------------------

function showLanguages(engines) {
  const select = $("mic-language");
  const chosen = select.value;
  const languages = [...new Set(engines.flatMap((engine) => engine.models.flatMap((model) => model.languages)))];
  select.replaceChildren(element("option", "the default model", ""), ...languages.map((tag) => {
    const option = element("option", tag);
    option.value = tag;
    return option;
  }));
  if (languages.includes(chosen)) select.value = chosen;
  const preferred = (navigator.language || "").split("-")[0];
  if (!chosen && languages.includes(preferred)) select.value = preferred;
}

const mic = { ws: null, context: null, stream: null };

async function startMicrophone() {
  $("mic-start").disabled = true;
  $("mic-phrases").replaceChildren();
  $("mic-partial").textContent = "";
  $("mic-transcript").textContent = "";
  setMicState("Asking for the microphone…");
  try {
    mic.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    try {
      mic.context = new AudioContext({ sampleRate: 16000 });
    } catch {
      mic.context = new AudioContext(); // the server converts whatever rate this is
    }
    await mic.context.audioWorklet.addModule(new URL("worklet.js", document.baseURI));
    const source = mic.context.createMediaStreamSource(mic.stream);
    const capture = new AudioWorkletNode(mic.context, "pcm-capture");
    source.connect(capture);
    capture.connect(mic.context.destination); // keeps it pulled; it outputs silence

    const ws = new WebSocket(socketUrl("api/microphone"));
    mic.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      const language = $("mic-language").value || null;
      ws.send(JSON.stringify({ language, model: null, rate: mic.context.sampleRate }));
      capture.port.onmessage = ({ data }) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(data.pcm);
        $("mic-level").firstElementChild.style.width = `${Math.min(100, data.rms * 300)}%`;
      };
      $("mic-stop").disabled = false;
    };
    ws.onmessage = (message) => showMicMessage(JSON.parse(message.data));
    ws.onclose = () => {
      releaseMicrophone();
      if ($("mic-state").dataset.final !== "yes") setMicState("The connection closed.");
    };
  } catch (error) {
    releaseMicrophone();
    setMicState(`The microphone could not be used: ${error.message || error}`, true);
  }
}

function showMicMessage(message) {
  if (message.type === "started") {
    $("mic-state").dataset.final = "";
    setMicState(`Listening: ${message.engine}, ${message.model} (${message.language}). Speak, then press Stop.`);
  } else if (message.type === "partial") {
    $("mic-partial").textContent = message.text;
  } else if (message.type === "phrase") {
    $("mic-partial").textContent = "";
    $("mic-phrases").append(element("li", message.text));
  } else if (message.type === "transcript") {
    $("mic-partial").textContent = "";
    $("mic-transcript").textContent = message.text || "(nothing was recognised)";
    $("mic-state").dataset.final = "yes";
    setMicState("Done: the transcript is below.");
  } else if (message.type === "error") {
    $("mic-state").dataset.final = "yes";
    setMicState(`Error (${message.code}): ${message.text}`, true);
  }
}

function stopMicrophone() {
  $("mic-stop").disabled = true;
  if (mic.ws && mic.ws.readyState === WebSocket.OPEN) {
    mic.ws.send(JSON.stringify({ type: "stop" }));
    setMicState("Waiting for the transcript…");
  }
  stopCapture();
}

function stopCapture() {
  if (mic.stream) mic.stream.getTracks().forEach((track) => track.stop());
  if (mic.context) mic.context.close();
  mic.stream = null;
  mic.context = null;
  $("mic-level").firstElementChild.style.width = "0";
}

function releaseMicrophone() {
  stopCapture();
  mic.ws = null;
  $("mic-start").disabled = false;
  $("mic-stop").disabled = true;
}

function setMicState(text, bad = false) {
  const line = $("mic-state");
  line.textContent = text;
  line.className = "state" + (bad ? " bad" : "");
}

$("mic-start").addEventListener("click", startMicrophone);
$("mic-stop").addEventListener("click", stopMicrophone);
connectLive();
