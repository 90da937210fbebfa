// emomm web page: upload, live and model tabs. Hand-written, no libraries, no build step.
// Everything it shows comes from the JSON API (/api/model, /api/predict/*, /ws/live).
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f",
                "#17becf", "#bcbd22", "#e377c2"];
const VIEW_NAMES = { fused: "hybrid (fused)", face: "face alone", voice: "voice alone",
                     video: "video alone", text: "text alone", landmarks: "landmarks alone" };
let MODEL = null;

// The access token (remote servers): the server sets a cookie on the first ?token= visit;
// drop it from the address bar so it is not bookmarked or shared by accident.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);

function showError(msg) {
  const e = $("error");
  e.textContent = msg; e.hidden = !msg;
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const m = body && body.error ? body.error.message : `${r.status} ${r.statusText}`;
    throw new Error(m);
  }
  return body;
}

// -- tabs -------------------------------------------------------------------------------
for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === b);
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "panel-" + b.dataset.tab;
  });
}

// -- drawing helpers -------------------------------------------------------------------------
function bars(container, labels, probs, title) {
  const box = document.createElement("div");
  if (title) { const h = document.createElement("div"); h.innerHTML = title; box.appendChild(h); }
  labels.forEach((name, i) => {
    const row = document.createElement("div"); row.className = "bar";
    const pct = (100 * (probs[i] || 0)).toFixed(1);
    row.innerHTML = `<span class="name">${name}</span><span class="track"><span class="fill" ` +
      `style="display:block;width:${pct}%;background:${COLORS[i % COLORS.length]}"></span></span>` +
      `<span class="pct">${pct}%</span>`;
    box.appendChild(row);
  });
  container.appendChild(box);
  return box;
}

// Curves over time on one chart: series [{name, color, points: [{t, p}]}] (p a probability),
// the legend (legendW px wide) naming each; t0/t1 the time axis (default: the points' span).
function curves(canvas, series, t0, t1, legendW, dot) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  const L = 36, R = legendW, T = 8, B = 22;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#ddd"; ctx.fillStyle = "#666"; ctx.font = "11px sans-serif";
  for (let q = 0; q <= 4; q++) {
    const y = T + (H - T - B) * (1 - q / 4);
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText((q * 25) + "%", 4, y + 4);
  }
  const all = series.flatMap((s) => s.points.map((p) => p.t));
  if (t0 === undefined) t0 = all.length ? Math.min(...all) : 0;
  if (t1 === undefined) t1 = all.length ? Math.max(...all) : 1;
  if (t1 <= t0) t1 = t0 + 1;
  const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const y = (p) => T + (H - T - B) * (1 - p);
  ctx.fillText(t0.toFixed(1) + " s", L, H - 6);
  ctx.fillText(t1.toFixed(1) + " s", W - R - 34, H - 6);
  series.forEach((s, n) => {
    ctx.strokeStyle = ctx.fillStyle = s.color;
    ctx.lineWidth = 2; ctx.beginPath();
    s.points.forEach((p, j) => { const X = x(p.t), Y = y(p.p); j ? ctx.lineTo(X, Y) : ctx.moveTo(X, Y); });
    if (s.points.length === 1) ctx.arc(x(s.points[0].t), y(s.points[0].p), dot, 0, 7);
    ctx.stroke();
    ctx.fillText(s.name, W - R + 8, T + 12 + n * 14);
  });
  ctx.lineWidth = 1;
}

// A line chart of each label's probability over time; points: [{t, probs}] in seconds.
function chart(canvas, labels, points, t0, t1) {
  curves(canvas, labels.map((name, i) => ({ name, color: COLORS[i % COLORS.length],
    points: points.map((p) => ({ t: p.t, p: p.probs[i] || 0 })) })), t0, t1, 90, 2);
  canvas.dataset.points = String(points.length);
}

// One curve per person: the probability of class k over time; people: [{name, timeline}]
// (the legend names each person).
function peopleChart(canvas, people, k, t0, t1) {
  curves(canvas, people.map((person, n) => ({ name: person.name, color: personColor(n),
    points: person.timeline.map((p) => ({ t: p.t, p: p.probs[k] || 0 })) })), t0, t1, 110, 3);
  canvas.dataset.curves = String(people.length);
}

// People keep one colour everywhere (box, thumbnail frame, curve); classes use COLORS.
const PERSON_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#8c564b"];
function personColor(n) { return PERSON_COLORS[n % PERSON_COLORS.length]; }

function drawBoxes(ctx, faces, scale, labels) {
  ctx.lineWidth = 3; ctx.font = "bold 14px sans-serif";
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.box.map((v) => v * scale);
    const i = labels.indexOf(f.label);
    const c = f.color || COLORS[(i < 0 ? 0 : i) % COLORS.length];
    ctx.strokeStyle = c; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (f.mesh) {   // the face mesh (serve predictor.mesh=true): one dot per point
      ctx.fillStyle = c;
      for (const [x, y] of f.mesh) ctx.fillRect(x * scale - 1, y * scale - 1, 2, 2);
    }
    const who = f.name ? f.name + ": " : f.id !== undefined && f.id !== null ? "#" + f.id + " " : "";
    const text = `${who}${f.label} ${(100 * f.confidence).toFixed(0)}%`;
    const w = ctx.measureText(text).width + 8;
    ctx.fillStyle = c; ctx.fillRect(x1, Math.max(0, y1 - 20), w, 20);
    ctx.fillStyle = "#fff"; ctx.fillText(text, x1 + 4, Math.max(14, y1 - 5));
  }
}

// Views: a result carries {view: probs} per face or clip; the selector picks one.
function fillViews(select, views, keep) {
  const prev = keep ? select.value : null;
  select.innerHTML = "";
  for (const v of views) {
    const o = document.createElement("option"); o.value = v; o.textContent = VIEW_NAMES[v] || v;
    select.appendChild(o);
  }
  if (prev && views.includes(prev)) select.value = prev;
}

function pick(views, probs, name) {
  return views && views[name] ? views[name] : probs;
}

// Each stream's own label beside the fused one, as HTML ("face: happy 62% · landmarks: sad 40%");
// empty for one stream.
function streamsLine(views, labels) {
  const names = Object.keys(views || {}).filter((v) => v !== "fused");
  if (names.length < 2 && !(views && views.fused && names.length)) return "";
  const parts = names.map((v) => {
    const p = views[v], i = p.indexOf(Math.max(...p));
    return `${esc(v)}: <span class="stream-label">${esc(labels[i])}</span> ${(100 * p[i]).toFixed(0)}%`;
  });
  return `<div class="streams" data-streams="${esc(names.join(" "))}">${parts.join(" · ")}</div>`;
}

// -- upload tab ------------------------------------------------------------------------------
let lastUpload = null;

function endpointFor(file) {
  const t = file.type || "";
  const mods = MODEL ? MODEL.modalities : [];
  if (t.startsWith("image/")) return "image";
  if (t.startsWith("audio/")) return "audio";
  if (t.startsWith("video/")) return mods.some((m) => m === "face" || m === "video") || !mods.includes("voice") ? "video" : "audio";
  if (/\.(jpe?g|png|webp|gif|bmp)$/i.test(file.name)) return "image";
  if (/\.(wav|flac|ogg|mp3|m4a)$/i.test(file.name)) return "audio";
  return "video";
}

// A new request clears the last result: after an error no stale result stays under the banner.
function clearUpload() {
  lastUpload = null;
  $("summary").innerHTML = "";
  $("image-canvas").hidden = true; $("upload-chart").hidden = true; $("upload-views").hidden = true;
  $("people").hidden = true; $("people-cards").innerHTML = "";
}

async function upload(file) {
  showError(""); clearUpload();
  const kind = endpointFor(file);
  const form = new FormData(); form.append("file", file);
  $("busy").hidden = false;
  try {
    const res = await api("/api/predict/" + kind, { method: "POST", body: form });
    res._file = file;
    lastUpload = res;
    renderUpload(res, false);
  } catch (e) {
    showError(e.message);
  } finally { $("busy").hidden = true; }
}

async function renderImage(res, view) {
  const canvas = $("image-canvas");
  const bmp = await createImageBitmap(res._file);
  const scale = Math.min(1, 720 / bmp.width);
  canvas.width = Math.round(bmp.width * scale); canvas.height = Math.round(bmp.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bmp, 0, 0, canvas.width, canvas.height);
  const faces = res.faces.map((f) => {
    const p = pick(f.views, f.probs, view);
    const i = p.indexOf(Math.max(...p));
    return { ...f, label: res.labels[i], confidence: p[i], probs: p };
  });
  drawBoxes(ctx, faces, scale, res.labels);
  canvas.hidden = false;
  canvas.dataset.faces = String(faces.length);
  return faces;
}

// A video's still (the moment the most people are visible) with each person's box.
async function renderStill(res) {
  const canvas = $("image-canvas"), fr = res.frame;
  const img = new Image();
  await new Promise((ok, bad) => { img.onload = ok; img.onerror = bad; img.src = fr.image; });
  const scale = Math.min(1, 720 / fr.width);
  canvas.width = Math.round(fr.width * scale); canvas.height = Math.round(fr.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const order = res.people.map((p) => p.id);
  const faces = fr.faces.map((f) => {
    const n = order.indexOf(f.id);
    return { ...f, name: n >= 0 ? res.people[n].name : undefined, color: personColor(n < 0 ? 0 : n) };
  });
  drawBoxes(ctx, faces, scale, res.labels);
  canvas.hidden = false;
  canvas.dataset.faces = String(faces.length);
}

// Per person: a thumbnail with the clip result, and one curve each on the people chart.
function renderPeople(res) {
  const people = res.people, sel = $("people-class");
  const keep = sel.options.length === res.labels.length ? sel.value : null;
  sel.innerHTML = "";
  res.labels.forEach((name, k) => { const o = document.createElement("option"); o.value = String(k); o.textContent = name; sel.appendChild(o); });
  const top = res.clip.probs.length ? res.clip.probs.indexOf(Math.max(...res.clip.probs)) : 0;
  sel.value = keep !== null ? keep : String(top);
  const cards = $("people-cards"); cards.innerHTML = "";
  people.forEach((p, n) => {
    const card = document.createElement("div"); card.className = "face-card person"; card.dataset.label = p.clip.label;
    if (p.thumbnail) {
      const img = document.createElement("img"); img.className = "thumb"; img.src = p.thumbnail; img.alt = p.name;
      img.style.borderColor = personColor(n); card.appendChild(img);
    }
    bars(card, res.labels, p.clip.probs, `<b>${esc(p.name)}: <span class="face-label">${esc(p.clip.label)}</span></b> ` +
      `${(100 * p.clip.confidence).toFixed(0)}%` + streamsLine(p.views, res.labels));
    cards.appendChild(card);
  });
  const end = Math.max(res.duration || 0, ...people.map((p) => p.timeline.length ? p.timeline[p.timeline.length - 1].t : 0));
  peopleChart($("people-chart"), people, Number(sel.value), 0, end);
  $("people").hidden = false;
}

async function renderUpload(res, keepView) {
  const views = res.view_names || [];
  fillViews($("upload-view"), views, keepView);
  $("upload-views").hidden = views.length < 2;
  const view = $("upload-view").value;
  const summary = $("summary"); summary.innerHTML = "";
  $("image-canvas").hidden = true; $("upload-chart").hidden = true; $("people").hidden = true;
  if (res.kind === "image") {
    const faces = await renderImage(res, view);
    if (!faces.length) summary.textContent = "No face found in this image.";
    faces.forEach((f, k) => {
      const card = document.createElement("div"); card.className = "face-card";
      card.dataset.label = f.label;
      bars(card, res.labels, f.probs, `<b>Face ${k + 1}: <span class="face-label">${f.label}</span></b> ${(100 * f.confidence).toFixed(0)}%` +
        streamsLine(f.views, res.labels));
      summary.appendChild(card);
    });
  } else if (res.kind === "text") {
    const p = res.probs;
    const i = p.indexOf(Math.max(...p));
    const card = document.createElement("div"); card.className = "face-card"; card.dataset.label = res.labels[i];
    bars(card, res.labels, p, `<b>Text: <span class="face-label">${res.labels[i]}</span></b>`);
    summary.appendChild(card);
  } else {  // video or audio: a timeline and the clip result
    const v = (res.views && res.views[view]) || res;
    const points = v.timeline || [];
    if (points.length) {
      $("upload-chart").hidden = false;
      chart($("upload-chart"), res.labels, points, 0, Math.max(res.duration || 0, points[points.length - 1].t));
    }
    const p = v.clip.probs;
    if (p.length) {  // empty when nothing could be predicted (no speech, no face): the note says why
      const i = p.indexOf(Math.max(...p));
      const card = document.createElement("div"); card.className = "face-card"; card.dataset.label = res.labels[i];
      bars(card, res.labels, p, `<b>Clip (${res.kind}, ${(res.duration || 0).toFixed(1)} s): ` +
        `<span class="face-label">${res.labels[i]}</span></b>`);
      summary.appendChild(card);
    }
    if (res.note) { const n = document.createElement("p"); n.textContent = res.note; summary.appendChild(n); }
    if (res.frame) await renderStill(res);
    if (res.people && res.people.length) renderPeople(res);
  }
}

$("file").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
$("upload-view").addEventListener("change", () => { if (lastUpload) renderUpload(lastUpload, true); });
$("people-class").addEventListener("change", () => { if (lastUpload && lastUpload.people) renderPeople(lastUpload); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
});
$("text-form").addEventListener("submit", async (e) => {
  e.preventDefault(); showError(""); clearUpload();
  const form = new FormData(); form.append("text", $("text").value);
  try {
    const res = await api("/api/predict/text", { method: "POST", body: form });
    lastUpload = res; renderUpload(res, false);
  } catch (err) { showError(err.message); }
});

// -- live tab ---------------------------------------------------------------------------------
const live = { ws: null, stream: null, audio: null, inflight: false, lastSent: 0, faces: [], voice: null,
               points: [], t0: 0, frames: 0, timer: null, maxFps: 15 };
const WINDOW_S = 30;

function liveViews() {
  const mods = MODEL ? MODEL.modalities : [];
  const v = [];
  if (mods.length > 1) v.push("fused");
  for (const m of ["face", "landmarks", "voice"]) if (mods.includes(m)) v.push(m);
  return v.length ? v : mods.slice(0, 1);
}

async function startLive() {
  showError("");
  const wantAudio = MODEL && MODEL.modalities.includes("voice");
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  } catch (e) { showError("Camera/microphone not available: " + e.message); return; }
  const video = $("live-video");
  video.srcObject = live.stream; await video.play();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/live`);
  ws.binaryType = "arraybuffer";
  live.ws = ws; live.points = []; live.frames = 0; live.t0 = performance.now() / 1000; live.inflight = false;
  ws.onopen = () => {
    if (wantAudio) startAudio(ws);
    ws.send(JSON.stringify({ type: "hello", sample_rate: live.audio ? live.audio.ctx.sampleRate : 16000 }));
  };
  ws.onmessage = (e) => onLiveMessage(JSON.parse(e.data));
  ws.onclose = (e) => { if (live.ws === ws) { stopLive(); if (e.code === 4401) showError("Access token required"); } };
  $("live-start").disabled = true; $("live-stop").disabled = false;
  $("live-status").textContent = "connecting…";
  fillViews($("live-view"), liveViews(), true);
  live.timer = setInterval(sendFrame, 20);
  requestAnimationFrame(drawLive);
}

function startAudio(ws) {
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(live.stream);
  // ScriptProcessor: no extra module file; 4096 samples ~ 85 ms at 48 kHz.
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  proc.onaudioprocess = (e) => {
    if (ws.readyState !== 1) return;
    const pcm = e.inputBuffer.getChannelData(0);
    const msg = new Uint8Array(1 + pcm.length * 4);
    msg[0] = 2; msg.set(new Uint8Array(new Float32Array(pcm).buffer), 1);
    ws.send(msg.buffer);
  };
  src.connect(proc); proc.connect(ctx.destination);
  live.audio = { ctx, src, proc };
}

// One frame in flight at a time, at most maxFps: the server's pace sets the rate, and frames
// the server could not keep up with are never captured rather than queued.
function sendFrame() {
  const ws = live.ws, video = $("live-video");
  if (!ws || ws.readyState !== 1 || live.inflight || !video.videoWidth) return;
  const now = performance.now();
  if (now - live.lastSent < 1000 / live.maxFps) return;
  live.inflight = true; live.lastSent = now;
  const c = document.createElement("canvas");
  c.width = video.videoWidth; c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  c.toBlob(async (blob) => {
    if (!blob || ws.readyState !== 1) { live.inflight = false; return; }
    const buf = new Uint8Array(1 + blob.size);
    buf[0] = 1; buf.set(new Uint8Array(await blob.arrayBuffer()), 1);
    ws.send(buf.buffer);
  }, "image/jpeg", 0.8);
}

function onLiveMessage(msg) {
  if (msg.type === "ready") {
    live.maxFps = msg.max_fps || 15;
    $("live-status").textContent = "live";
    return;
  }
  if (msg.type === "error") { live.inflight = false; $("live-status").textContent = "error: " + msg.message; return; }
  if (msg.type !== "frame") return;
  live.inflight = false;
  live.frames += 1;
  live.faces = msg.faces || []; live.voice = msg.voice;
  const view = $("live-view").value;
  const t = performance.now() / 1000 - live.t0;
  let probs = null;
  if (view === "voice") probs = live.voice ? live.voice.probs : null;
  else if (live.faces.length) probs = pick(live.faces[0].views, live.faces[0].probs, view);
  if (probs) live.points.push({ t, probs });
  while (live.points.length && live.points[0].t < t - WINDOW_S) live.points.shift();
  chart($("live-chart"), MODEL.labels, live.points, Math.max(0, t - WINDOW_S), Math.max(t, 1));
  $("live-fps").textContent = `${msg.fps.toFixed(1)} fps · ${msg.ms.toFixed(0)} ms · ${msg.dropped} dropped`;
  const st = $("live-status");
  st.dataset.frames = String(live.frames);
  st.textContent = `live: ${live.faces.length} face(s)`;
  const col = $("live-bars"); col.innerHTML = "";
  live.faces.forEach((f, k) => {
    const p = pick(f.views, f.probs, view);
    const i = p.indexOf(Math.max(...p));
    const b = bars(col, MODEL.labels, p, `<b>Face ${f.id !== undefined && f.id !== null ? "#" + f.id : k + 1}: <span class="face-label">${MODEL.labels[i]}</span></b>` +
      streamsLine(f.views, MODEL.labels));
    b.className = "face-card";
  });
  if (live.voice) bars(col, MODEL.labels, live.voice.probs, "<b>Voice</b>").className = "face-card";
}

function drawLive() {
  if (!live.ws) return;
  const video = $("live-video"), canvas = $("live-canvas");
  if (video.videoWidth) {
    const scale = canvas.width / video.videoWidth;
    canvas.height = Math.round(video.videoHeight * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const view = $("live-view").value;
    const faces = live.faces.map((f) => {
      const p = pick(f.views, f.probs, view);
      const i = p.indexOf(Math.max(...p));
      return { ...f, label: MODEL.labels[i], confidence: p[i] };
    });
    drawBoxes(ctx, faces, scale, MODEL.labels);
  }
  requestAnimationFrame(drawLive);
}

function stopLive() {
  const ws = live.ws; live.ws = null;
  clearInterval(live.timer);
  if (ws && ws.readyState <= 1) ws.close();
  if (live.audio) { live.audio.proc.disconnect(); live.audio.src.disconnect(); live.audio.ctx.close(); live.audio = null; }
  if (live.stream) { for (const tr of live.stream.getTracks()) tr.stop(); live.stream = null; }
  $("live-start").disabled = false; $("live-stop").disabled = true;
  $("live-status").textContent = "off";
}
$("live-start").addEventListener("click", startLive);
$("live-stop").addEventListener("click", stopLive);

// -- model tab ----------------------------------------------------------------------------------
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

// A zoo model's card (/api/model "card"): its fields, the validation means, and card.md as written.
function renderCard(c) {
  const pct = (v) => (typeof v === "number" ? (Math.abs(v) <= 1 ? (100 * v).toFixed(1) + "%" : v.toFixed(3)) : esc(v));
  const rows = [["model", c.name + (c.kind === "bundle" ? " (bundle)" : "")], ["modality", c.modality || ""],
                ["input", c.input || ""], ["recipe", (c.recipe || {}).command || ""],
                ["git commit", (c.recipe || {}).git_commit || ""], ["intended use", c.intended_use || ""]];
  for (const [k, v] of Object.entries(c.training_data || {})) rows.push(["data: " + k, v]);
  const cal = c.calibration || {};
  if (cal.temperature) rows.push(["temperature", Number(cal.temperature).toFixed(3)]);
  let html = "<h3 id='card-title'>Model card</h3><table id='card'>" +
    rows.filter(([, v]) => v).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("") + "</table>";
  if (c.members) {
    html += "<h4>Members</h4><table>" + c.members.map((x) => `<tr><th>${esc(x.name)}</th><td>${esc(x.modality)}, weight ` +
      `${Number(x.weight).toFixed(2)}, temperature ${Number(x.temperature).toFixed(3)}</td></tr>`).join("") + "</table>";
    if (c.label_mapping) html += `<p>${esc(c.label_mapping)}</p>`;
  }
  if (c.metrics) {
    html += `<h4>Validation (${esc(c.metrics.split)} split, ${c.metrics.seeds} seed${c.metrics.seeds > 1 ? "s" : ""})</h4><table>` +
      Object.entries(c.metrics.mean).filter(([k]) => !k.includes("/")).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${pct(v)}</td></tr>`).join("") + "</table>";
  }
  if (c.limitations) html += "<h4>Limitations</h4><ul>" + c.limitations.map((x) => `<li>${esc(x)}</li>`).join("") + "</ul>";
  if (c.markdown) html += "<details><summary>card.md</summary><pre>" + esc(c.markdown) + "</pre></details>";
  return html;
}

function renderModel(m) {
  const rows = [["checkpoint", m.checkpoint], ["modalities", m.modalities.join(", ")],
                ["labels", m.labels.join(", ")], ["backend", m.backend || ""],
                ["training data", m.data_summary || ""]];
  let html = "<table>" + rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("") + "</table>";
  if (m.metrics) {
    const flat = [];
    for (const [split, vals] of Object.entries(m.metrics)) {
      if (vals && typeof vals === "object") for (const [k, v] of Object.entries(vals)) if (typeof v === "number") flat.push([split + "/" + k, v]);
    }
    html += "<h3>Measured metrics (metrics.json beside the checkpoint)</h3><table id='metrics'>" +
      flat.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${Math.abs(v) <= 1 ? (100 * v).toFixed(1) + "%" : v.toFixed(3)}</td></tr>`).join("") + "</table>";
  } else if (!m.card) html += "<p>No metrics.json next to this checkpoint.</p>";
  if (m.card) html += renderCard(m.card);
  html += "<h3>Preprocessing</h3><pre>" + esc(JSON.stringify(m.preprocessing, null, 1)) + "</pre>";
  $("model-info").innerHTML = html;
  $("model-brief").textContent = `${m.modalities.join(" + ")} · ${m.labels.length} labels`;
}

// Inputs only for the modalities the model has: no text box for a face model, no file drop for
// a text model, a view selector only where there is more than one view.
function showInputsFor(m) {
  const mods = m.modalities, visual = mods.includes("face") || mods.includes("video"), voice = mods.includes("voice");
  $("text-form").hidden = !mods.includes("text");
  $("drop").hidden = !(visual || voice);
  $("file").accept = [visual ? "image/*,video/*" : "", voice ? "audio/*,video/*" : ""].filter(Boolean).join(",");
  const what = [visual ? "a photo or video" : "", voice ? "a recording" : ""].filter(Boolean).join(" or ");
  $("drop").firstChild.textContent = `Drop ${what} here, or click to choose`;
  $("live-views").hidden = liveViews().length < 2;
  $("tab-live").hidden = !(visual || voice);
}

api("/api/model").then((m) => { MODEL = m; renderModel(m); showInputsFor(m); fillViews($("live-view"), liveViews(), false); })
  .catch((e) => showError("Cannot reach the model: " + e.message));
