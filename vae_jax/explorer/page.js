// The explorer page: every picture is asked of the server (the model's jitted functions) as a PNG.
// A control that moves faster than the server answers sends only its latest value.
"use strict";
const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const STEPS = 9;
const state = { info: null, map: null, label: null, u: null, u0: null, start: "test:0", a: "test:0", b: "test:1",
  upload: null, uploadPlace: null, click: null, seed: 0 };
window.vaeLatency = [];  // ms from a slider's input event to its decoded image on screen

function say(message, error = false) {
  $("status").textContent = message;
  $("status").className = error ? "error" : "";
}

async function answer(response) {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
  throw new Error(message);
}

async function post(path, body) {
  return answer(await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
}

function show(img, blob) {  // resolves once the new picture is loaded
  return new Promise((resolve) => {
    const old = img.src;
    img.onload = () => { if (old.startsWith("blob:")) URL.revokeObjectURL(old); resolve(); };
    img.onerror = () => resolve();
    img.src = typeof blob === "string" ? blob : URL.createObjectURL(blob);
  });
}

async function picture(img, path, body) {
  await show(img, await (await post(path, body)).blob());
}

const queues = {};
function latest(name, work) {  // run `work` now, or after the one in flight (replacing any waiting)
  const q = (queues[name] ||= { busy: false, next: null });
  q.next = work;
  if (q.busy) return;
  q.busy = true;
  (async () => {
    while (q.next) {
      const job = q.next;
      q.next = null;
      try { await job(); } catch (e) { say(e.message, true); }
    }
    q.busy = false;
  })();
}

function idle() {  // resolves when no request is in flight or waiting
  return new Promise((resolve) => {
    const check = () => (Object.values(queues).some((q) => q.busy) ? setTimeout(check, 20) : resolve());
    check();
  });
}

function sourceName(src) {
  return src.startsWith("upload:") ? "your image" : `test image ${src.slice(5)}`;
}

// ---- the map
function mapScale() {
  const m = state.map, pad = 12, size = $("map").width - 2 * pad;
  const [x0, x1, y0, y1] = [Math.min(...m.x), Math.max(...m.x), Math.min(...m.y), Math.max(...m.y)];
  const s = size / Math.max(x1 - x0, y1 - y0, 1e-9);
  return { toPx: (x, y) => [pad + (x - x0) * s, pad + (y1 - y) * s], fromPx: (px, py) => [x0 + (px - pad) / s, y1 - (py - pad) / s] };
}

function drawMap() {
  if (!$("map")) return;  // a discrete z has no map
  const m = state.map, ctx = $("map").getContext("2d");
  ctx.clearRect(0, 0, $("map").width, $("map").height);
  if (!m || m.kind === "none") return;
  const { toPx } = mapScale();
  ctx.globalAlpha = 0.6;
  for (let i = 0; i < m.x.length; i++) {
    const [px, py] = toPx(m.x[i], m.y[i]);
    ctx.fillStyle = COLOURS[m.labels[i] % COLOURS.length];
    ctx.fillRect(px - 1, py - 1, 2.5, 2.5);
  }
  ctx.globalAlpha = 1;
  const mark = (xy, colour, r) => {
    if (!xy) return;
    const [px, py] = toPx(xy[0], xy[1]);
    ctx.strokeStyle = colour; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.stroke();
  };
  mark(state.click, "#000", 6);
  mark(state.uploadPlace, "#d50000", 9);
}

async function loadMap() {
  const m = await (await answer(await fetch("/api/map"))).json();
  state.map = m;
  const names = { latent: "the two latent dimensions themselves", pca: "PCA of the posterior means", tsne: "t-SNE of the posterior means" };
  $("map-note").textContent = m.kind === "none" ? "no map: no test images were found for this model" :
    `${m.x.length.toLocaleString()} test images: ${names[m.kind]}, coloured by label. Hover a point to see its image; click anywhere to decode that point.`;
  $("tsne").hidden = m.kind !== "pca";
  const t = m.tsne;
  $("tsne-note").textContent = t.state === "running" ? `t-SNE of ${m.x.length.toLocaleString()} points: computing, ${Math.round(t.elapsed)} s so far (PCA until it is done)...` :
    t.state === "failed" ? `t-SNE failed: ${t.error}` : t.state === "done" ? `t-SNE took ${t.seconds.toFixed(0)} s` : "";
  drawMap();
  return m;
}

function nearest(px, py) {
  const m = state.map, { toPx } = mapScale();
  let best = -1, bestD = 36;
  for (let i = 0; i < m.x.length; i++) {
    const [qx, qy] = toPx(m.x[i], m.y[i]);
    const d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  }
  return best;
}

function setUpMap() {
  const canvas = $("map"), tip = $("hover");
  canvas.addEventListener("mousemove", (e) => {
    if (!state.map || state.map.kind === "none") return;
    const i = nearest(e.offsetX, e.offsetY);
    tip.hidden = i < 0;
    if (i < 0) return;
    if (tip.dataset.index !== String(i)) { tip.dataset.index = i; tip.src = `/api/test/${i}`; }
    tip.style.left = `${e.offsetX + 12}px`; tip.style.top = `${e.offsetY + 12}px`;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  canvas.addEventListener("click", (e) => {
    if (!state.map || state.map.kind === "none") return;
    state.click = mapScale().fromPx(e.offsetX, e.offsetY);
    drawMap();
    latest("map", () => picture($("map-decoded"), "/api/map_point", { x: state.click[0], y: state.click[1], label: state.label }));
  });
  $("tsne").addEventListener("click", async () => {
    try {
      await post("/api/tsne", {});
      const poll = async () => { const m = await loadMap(); if (m.tsne.state === "running") setTimeout(poll, 1000); };
      poll();
    } catch (e) { say(e.message, true); }
  });
}

// ---- sliders
function decodeSliders(t0) {
  latest("sliders", async () => {
    await picture($("slider-decoded"), "/api/show", { u: state.u, label: state.label });
    if (t0 !== undefined) window.vaeLatency.push(performance.now() - t0);
  });
}

async function startFrom(src) {
  const { u } = await (await post("/api/standard", { src, label: state.label })).json();
  state.start = src; state.u = u.slice(); state.u0 = u.slice();
  for (const input of document.querySelectorAll("#sliders input")) input.value = u[+input.dataset.dim];
  $("start-caption").textContent = `start: ${sourceName(src)}`;
  await show($("start-image"), src.startsWith("upload:") ? $("upload-seen").src : `/api/test/${src.slice(5)}`);
  decodeSliders();
}

function setUpSliders(info) {
  const box = $("sliders");
  info.sliders.forEach(({ dim, activity }) => {
    const row = document.createElement("div");
    row.className = "slider";
    const label = document.createElement("label");
    label.textContent = activity === null ? `z[${dim}]` : `z[${dim}] (${activity.toFixed(2)})`;
    const input = Object.assign(document.createElement("input"), { type: "range", min: -3, max: 3, step: 0.05, value: 0 });
    input.dataset.dim = dim;
    input.addEventListener("input", () => {
      const t0 = performance.now();
      state.u[dim] = +input.value;
      decodeSliders(t0);
    });
    row.append(label, input);
    box.append(row);
  });
  $("slider-note").textContent = `The ${info.sliders.length} most active of ${info.top} latent dimensions, ranked by ${info.activity}; ` +
    "in the prior's standard deviations from its mean.";
  const n = info.test_images;
  $("start").max = Math.max(n - 1, 0);
  $("start").addEventListener("change", () => latest("start", () => startFrom(`test:${$("start").value}`)));
  $("start-random").addEventListener("click", () => {
    $("start").value = Math.floor(Math.random() * n);
    latest("start", () => startFrom(`test:${$("start").value}`));
  });
  $("start-upload").addEventListener("click", () => latest("start", () => startFrom(`upload:${state.upload}`)));
  $("reset").addEventListener("click", () => latest("start", () => startFrom(state.start)));
}

// ---- interpolation
function interpolate(strip = true) {
  const body = { a: state.a, b: state.b, slerp: $("interp-mode").value === "slerp", label: state.label };
  const t = +$("interp-t").value;
  $("interp-t-value").textContent = t.toFixed(2);
  $("a-name").textContent = sourceName(state.a); $("b-name").textContent = sourceName(state.b);
  latest("interp", () => picture($("interp-decoded"), "/api/interpolate", { ...body, t: [t] }));
  if (strip) latest("strip", () => picture($("interp-strip"), "/api/interpolate", { ...body, t: [...Array(STEPS).keys()].map((i) => i / (STEPS - 1)) }));
}

function setUpInterpolation() {
  for (const end of ["a", "b"]) {
    $(`${end}-index`).addEventListener("change", () => { state[end] = `test:${$(`${end}-index`).value}`; interpolate(); });
    $(`${end}-upload`).addEventListener("click", () => { state[end] = `upload:${state.upload}`; interpolate(); });
  }
  $("interp-mode").addEventListener("change", () => interpolate());
  $("interp-t").addEventListener("input", () => interpolate(false));
}

// ---- samples
function resample() {
  $("temperature-value").textContent = (+$("temperature").value).toFixed(2);
  const body = { temperature: +$("temperature").value, label: state.label, seed: state.seed, sampler: $("sampler").value || "prior" };
  latest("samples", () => picture($("samples"), "/api/samples", body));
}

// ---- the codes of a discrete z (shown instead of the map, the sliders and the interpolation)
async function showCodes(src) {
  const r = await (await post("/api/codes", { src })).json();
  const image = src.startsWith("upload:") ? $("upload-seen").src : `/api/test/${src.slice(5)}`;
  await Promise.all([show($("codes-image"), image), show($("codes-recon"), r.recon)]);
  $("codes-name").textContent = sourceName(src);
  const table = $("codes-grid");
  table.replaceChildren();
  for (const row of r.codes) {
    const tr = table.insertRow();
    for (const code of row) {
      const cell = tr.insertCell();
      cell.textContent = code;
      cell.style.background = `hsl(${(code * 47) % 360}, 60%, 85%)`;
    }
  }
}

function setUpCodes(info) {
  const d = info.discrete;
  for (const panel of ["map", "sliders", "interp"]) {
    const section = $(`${panel}-panel`), why = d.not_shown[panel === "interp" ? "interpolation" : panel];
    section.replaceChildren(section.querySelector("h2"), Object.assign(document.createElement("p"), { className: "note not-shown", textContent: why }));
  }
  $("codes-panel").hidden = false;
  $("temperature-box").hidden = true;
  d.samplers.forEach(({ name, label }) => $("sampler").add(new Option(label, name)));
  $("sampler").hidden = d.samplers.length < 2;
  const described = () => { $("sampler-note").textContent = d.samplers[$("sampler").selectedIndex].text; };
  described();
  $("sampler").addEventListener("change", () => { described(); resample(); });
  const u = d.usage, top = u ? u.top.map(([code, n]) => `${code} (${n.toLocaleString()})`).join(", ") : "";
  $("codes-usage").textContent = u ? `${u.used} of ${u.codes} codes are used by the ${u.images.toLocaleString()} test images ` +
    `(${u.dead} dead), perplexity ${u.perplexity.toFixed(1)}; ${u.positions} codes per image; the most used: ${top}.` : "no test images to count the codes of";
  const n = info.test_images;
  $("codes-index").max = Math.max(n - 1, 0);
  $("codes-index").addEventListener("change", () => latest("codes", () => showCodes(`test:${$("codes-index").value}`)));
  $("codes-random").addEventListener("click", () => {
    $("codes-index").value = Math.floor(Math.random() * n);
    latest("codes", () => showCodes(`test:${$("codes-index").value}`));
  });
  $("codes-upload").addEventListener("click", () => latest("codes", () => showCodes(`upload:${state.upload}`)));
}

// ---- your image
async function uploadFile(file) {
  const limit = state.info.max_upload_bytes;
  if (file.size > limit) {
    say(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MB: at most ${limit / 2 ** 20} MB are read`, true);
    return;
  }
  say(`reading ${file.name}...`);
  const url = "/api/upload" + (state.label === null ? "" : `?label=${state.label}`);
  const r = await (await answer(await fetch(url, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file }))).json();
  await Promise.all([show($("upload-seen"), r.seen), show($("upload-recon"), r.recon)]);
  $("upload-nll").textContent = r.bound ? `a bound on -log p(x): ${r.nll.toFixed(2)} nats (under the uniform prior over the codes)`
    : r.nll !== undefined ? `NLL ${r.conditional ? "-log p(x|y)" : "-log p(x)"} = ${r.nll.toFixed(2)} nats (importance sampled, k = ${r.k})`
    : `reconstruction: log p(x|z) = ${r.recon_error.toFixed(2)} nats at the posterior mean (${r.what})`;
  $("upload-notes").textContent = r.notes.length ? `prepared as the model's inputs are: ${r.notes.join("; ")}` : "";
  state.upload = r.id; state.uploadPlace = r.place;
  for (const id of ["start-upload", "a-upload", "b-upload", "codes-upload"]) if ($(id)) $(id).disabled = false;
  if (r.codes) latest("codes", () => showCodes(`upload:${r.id}`));
  drawMap();
  say(`${file.name}: done${r.place ? " (its place is circled in red on the map)" : ""}`);
}

function setUpUpload() {
  const drop = $("drop"), run = (file) => uploadFile(file).catch((e) => say(`${file.name}: ${e.message}`, true));
  $("file").addEventListener("change", () => { if ($("file").files.length) run($("file").files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) run(e.dataTransfer.files[0]);
  });
}

// ---- the model
function setUpInfo(info) {
  $("model-line").textContent = info.title;
  for (const [key, value] of info.facts) {
    const row = $("info").insertRow();
    row.insertCell().textContent = key;
    row.insertCell().textContent = value;
  }
  if (info.classes.length) {
    $("class-box").hidden = false;
    info.classes.forEach((name, i) => $("label").add(new Option(`${i}: ${name}`, i)));
    state.label = 0;
    $("label").addEventListener("change", () => {
      state.label = +$("label").value;
      decodeSliders(); interpolate(); resample();
      if (state.click) latest("map", () => picture($("map-decoded"), "/api/map_point", { x: state.click[0], y: state.click[1], label: state.label }));
    });
  }
  $("legend").replaceChildren(...(info.label_names || []).slice(0, COLOURS.length).map((name, i) => {
    const span = document.createElement("span");
    const swatch = Object.assign(document.createElement("i"), { style: `background:${COLOURS[i]}` });
    span.append(swatch, name);
    return span;
  }));
}

async function ready() {  // the model's description, once the server has mapped the test images
  const started = Date.now();
  for (;;) {
    const info = await (await answer(await fetch("/api/info"))).json();
    if (info.state !== "computing") return info;
    document.body.dataset.map = "computing";
    say(`computing the map of the test images (${((Date.now() - started) / 1000).toFixed(0)} s) ...`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function main() {
  try {
    const info = await ready();
    say("");
    state.info = info;
    setUpInfo(info); setUpUpload();
    if (info.discrete) setUpCodes(info); else { setUpMap(); setUpSliders(info); setUpInterpolation(); }
    $("temperature").addEventListener("input", resample);
    $("resample").addEventListener("click", () => { state.seed += 1; resample(); });
    if (!info.discrete) await loadMap();
    document.body.dataset.map = "ready";
    if (info.discrete) { if (info.test_images) await showCodes("test:0"); }
    else if (info.test_images) {
      const [a, b] = info.interpolate;
      Object.assign(state, { a: `test:${a}`, b: `test:${b}` });
      $("a-index").value = a; $("b-index").value = b;
      await startFrom("test:0"); interpolate();
    } else { state.u = Array(info.top).fill(0); decodeSliders(); }
    resample();
    await idle();
    if ($("status").className !== "error") say("");
    document.body.dataset.ready = "yes";
  } catch (e) { say(e.message, true); }
}
main();
