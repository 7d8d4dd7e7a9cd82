// Playground: speaks text through WS /ws/synthesize-stream and plays the frames as they
// arrive with the Web Audio API. Each 20 ms frame becomes an AudioBuffer scheduled right
// after the previous one; the clause being heard is found from the audio timeline (the
// time each clause's first and last frame play) and the `sentence_complete` texts.
// `window.playground.stats` exposes what happened, for the browser test.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const LEAD_S = 0.06; // scheduling head start, so the first frame is not late

  // G.711 mu-law byte -> linear sample in [-1, 1).
  const MULAW = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    let t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    MULAW[i] = ((u & 0x80) ? 0x84 - t : t - 0x84) / 32768;
  }

  const stats = {
    state: "idle",            // idle | connecting | speaking | done | stopped | error
    framesReceived: 0,
    buffersScheduled: 0,
    buffersEnded: 0,
    playing: false,           // a scheduled buffer is playing or still to play
    currentClause: -1,        // index of the clause being heard, -1 for none
    highlightChanges: 0,
    clauses: 0,               // sentence_complete messages received
    ttfaMs: null,             // text sent -> first audio message
    cancelled: false,         // the server acknowledged a Stop
    lastError: null,
  };

  let ctx = null;       // AudioContext, made on the first Speak (a user gesture)
  let ws = null;
  let sources = [];     // scheduled AudioBufferSourceNodes not yet ended
  let nextTime = 0;     // where the next frame starts on ctx's clock
  let clauseStart = null;
  let clauses = [];     // {index, text, start, end, el}
  let inputText = "";
  let consumed = 0;     // characters of inputText covered by completed clauses
  let sentAt = 0;
  let rate = 8000;
  let stopping = false;

  function showError(message) {
    stats.lastError = message;
    stats.state = "error";
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
    setStatus("error");
  }

  function clearError() {
    stats.lastError = null;
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function setStatus(text) { $("status").textContent = text; }

  function setBusy(busy) {
    $("speak").disabled = busy;
    $("stop").disabled = !busy;
  }

  function decodeBase64(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function toFloat(bytes, encoding) {
    if (encoding === "mulaw") {
      const out = new Float32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) out[i] = MULAW[bytes[i]];
      return out;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(bytes.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true) / 32768;
    return out;
  }

  function schedule(samples) {
    const buffer = ctx.createBuffer(1, samples.length, rate);
    buffer.copyToChannel(samples, 0);
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(ctx.destination);
    // After an underrun, start again a little ahead of now rather than in the past.
    nextTime = Math.max(nextTime, ctx.currentTime + LEAD_S);
    if (clauseStart === null) clauseStart = nextTime;
    src.start(nextTime);
    nextTime += buffer.duration;
    src.onended = () => {
      stats.buffersEnded++;
      sources = sources.filter((s) => s !== src);
      stats.playing = sources.length > 0;
    };
    sources.push(src);
    stats.buffersScheduled++;
    stats.playing = true;
  }

  function renderPending() {
    const pending = $("transcript").querySelector(".pending");
    pending.textContent = inputText.slice(consumed);
  }

  function addClause(message) {
    const el = document.createElement("span");
    el.className = "clause";
    el.textContent = message.text;
    const transcript = $("transcript");
    transcript.insertBefore(el, transcript.querySelector(".pending"));
    consumed += message.text.length;
    renderPending();
    const start = clauseStart === null ? nextTime : clauseStart;
    clauses.push({ index: message.clause, text: message.text, start, end: nextTime, el });
    clauseStart = null;
    stats.clauses++;
  }

  function tick() {
    if (ctx !== null && clauses.length) {
      const t = ctx.currentTime;
      let current = -1;
      for (const c of clauses) {
        if (t >= c.start && t < c.end) current = c.index;
        c.el.classList.toggle("done", t >= c.end);
      }
      if (!stats.playing) current = -1;
      if (current !== stats.currentClause) {
        stats.currentClause = current;
        stats.highlightChanges++;
        for (const c of clauses) c.el.classList.toggle("current", c.index === current);
        $("clause").textContent = current < 0 ? "–" : String(current);
      }
    }
    if (stats.state === "done" && !stats.playing && ws !== null) {
      setStatus("done");
      finish();
    }
  }

  function stopAudio() {
    for (const src of sources) {
      src.onended = null;
      try { src.stop(); } catch (e) { /* already stopped */ }
    }
    sources = [];
    stats.playing = false;
    nextTime = 0;
  }

  function onMessage(event) {
    let m;
    try { m = JSON.parse(event.data); } catch (e) { showError("Bad message from server"); return; }
    if (m.error) {
      showError(m.code ? `${m.error} (${m.code})` : m.error);
      if (stats.framesReceived === 0) finish();
      return;
    }
    switch (m.type) {
      case "ready":
        stats.state = "speaking";
        setStatus(`speaking (${m.backend}, voice ${m.voice_id})`);
        sentAt = performance.now();
        ws.send(JSON.stringify({ type: "text", content: inputText }));
        ws.send(JSON.stringify({ type: "end" }));
        break;
      case "audio": {
        if (stats.state === "stopped") break; // in flight before the cancel took effect
        if (stats.ttfaMs === null) {
          stats.ttfaMs = Math.round(performance.now() - sentAt);
          $("ttfa").textContent = `${stats.ttfaMs} ms`;
        }
        stats.framesReceived++;
        schedule(toFloat(decodeBase64(m.audio), m.format === "mulaw" ? "mulaw" : "pcm16"));
        $("received").textContent = `${(stats.framesReceived * 0.02).toFixed(2)} s`;
        break;
      }
      case "sentence_complete":
        addClause(m);
        break;
      case "complete":
        // The socket stays open until playback ends, so Stop can still send a cancel.
        $("total").textContent = `${Math.round(m.total_ms)} ms`;
        stats.state = "done";
        break;
      case "cancelled":
        stats.cancelled = true;
        finish();
        break;
      default:
        break;
    }
  }

  function finish() {
    setBusy(false);
    if (ws !== null) {
      stopping = true;
      ws.close(1000);
      ws = null;
    }
  }

  async function speak() {
    clearError();
    inputText = $("text").value;
    if (!inputText.trim()) { showError("Type some text first"); return; }
    if (ctx === null) ctx = new AudioContext();
    if (ctx.state === "suspended") await ctx.resume();
    stopAudio();
    Object.assign(stats, { state: "connecting", framesReceived: 0, buffersScheduled: 0,
      buffersEnded: 0, currentClause: -1, clauses: 0, ttfaMs: null, cancelled: false });
    clauses = [];
    clauseStart = null;
    consumed = 0;
    const transcript = $("transcript");
    transcript.textContent = "";
    const pending = document.createElement("span");
    pending.className = "pending";
    transcript.appendChild(pending);
    renderPending();
    for (const id of ["ttfa", "received", "clause", "total"]) $(id).textContent = "–";

    const format = document.querySelector('input[name="mode"]:checked').value;
    rate = format === "mulaw" ? 8000 : 24000;
    const key = $("api-key").value.trim();
    localStorage.setItem("tts-api-key", key);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = key ? `?api_key=${encodeURIComponent(key)}` : "";
    stopping = false;
    setBusy(true);
    setStatus("connecting");
    const socket = new WebSocket(`${scheme}://${location.host}/ws/synthesize-stream${query}`);
    ws = socket;
    socket.onopen = () => socket.send(JSON.stringify({
      type: "init", voice_id: $("voice").value.trim(), preset: $("preset").value,
      output_format: format,
    }));
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      if (ws === socket) ws = null;
      setBusy(false);
      if (stopping || event.code === 1000) return;
      if (event.code === 1008) showError(`Not authorized: ${event.reason || "check the API key"}`);
      else showError(`Connection closed (${event.code}${event.reason ? ": " + event.reason : ""})`);
    };
    socket.onerror = () => { if (!stopping) showError("WebSocket error: is the server running?"); };
  }

  function stop() {
    stopAudio();
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "cancel" }));
    } else {
      finish();
    }
    stats.state = "stopped";
    setStatus("stopped");
  }

  async function loadHealth() {
    try {
      const res = await fetch("/health");
      const health = await res.json();
      $("backend").textContent =
        `engine ${health.backend} on ${health.device} · ${health.sample_rate} Hz · v${health.version}`;
      const select = $("preset");
      select.textContent = "";
      for (const name of health.presets) {
        const opt = document.createElement("option");
        opt.value = opt.textContent = name;
        if (name === "balanced") opt.selected = true;
        select.appendChild(opt);
      }
    } catch (e) {
      showError(`Cannot reach the server: ${e}`);
    }
  }

  $("speak").addEventListener("click", speak);
  $("stop").addEventListener("click", stop);
  $("api-key").value = localStorage.getItem("tts-api-key") || "";
  setInterval(tick, 30);
  loadHealth();
  window.playground = { stats, speak, stop };
})();
