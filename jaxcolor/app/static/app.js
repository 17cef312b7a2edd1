// jaxcolor's page: open a photo, show every model's colorization, temperature, color hints, downloads.
"use strict";
const state = { models: [], photo: null, hints: [], temperature: null };
const $ = (id) => document.getElementById(id);

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function say(text) { $("message").textContent = text || ""; }

function params(model, extra) {
  const p = new URLSearchParams({ photo: state.photo.id, model: model.name });
  if (model.classification) p.set("temperature", state.temperature);
  if (model.takes_hints && state.hints.length) p.set("hints", JSON.stringify(state.hints));
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

async function errorOf(response) {
  try { return (await response.json()).error; } catch (e) { return `${response.status} ${response.statusText}`; }
}

async function load(img, url) {
  // Fetch a PNG into an <img>; data-state says loading / done / error (the tests wait on it).
  img.dataset.state = "loading";
  img.dataset.url = url;
  try {
    const r = await fetch(url);
    if (img.dataset.url !== url) return;  // a newer request replaced this one
    if (!r.ok) { img.dataset.state = "error"; say(await errorOf(r)); return; }
    const blob = await r.blob();
    if (img.dataset.url !== url) return;
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.onload = () => { if (img.dataset.url === url) img.dataset.state = "done"; };
    img.src = URL.createObjectURL(blob);
  } catch (e) { img.dataset.state = "error"; say(`${e}`); }
}

function refresh(which) {
  if (!state.photo) return;
  for (const m of state.models) {
    if (which && !which(m)) continue;
    load($(`out-${m.name}`), `/api/preview?${params(m)}`);
    $(`download-${m.name}`).href = `/api/download?${params(m)}`;
  }
}

function drawHints() {
  for (const m of state.models.filter((m) => m.takes_hints)) {
    const frame = $(`frame-${m.name}`);
    frame.querySelectorAll(".hint").forEach((el) => el.remove());
    state.hints.forEach((h, i) => {
      const el = document.createElement("div");
      el.className = "hint";
      el.style.left = `${(100 * (h.x + 0.5)) / state.photo.width}%`;
      el.style.top = `${(100 * (h.y + 0.5)) / state.photo.height}%`;
      el.style.background = h.color;
      el.title = `hint ${i}: ${h.color} at (${h.x}, ${h.y}); drag to move, right-click to remove`;
      el.addEventListener("contextmenu", (e) => { e.preventDefault(); state.hints.splice(i, 1); hintsChanged(); });
      el.addEventListener("pointerdown", (e) => drag(e, i, frame));
      frame.appendChild(el);
    });
  }
  $("clear-hints").hidden = !state.hints.length;
}

function hintsChanged() { drawHints(); refresh((m) => m.takes_hints); }

function photoPoint(e, frame) {
  const box = frame.querySelector("img").getBoundingClientRect();
  const fx = Math.min(Math.max((e.clientX - box.left) / box.width, 0), 0.9999);
  const fy = Math.min(Math.max((e.clientY - box.top) / box.height, 0), 0.9999);
  return { x: Math.floor(fx * state.photo.width), y: Math.floor(fy * state.photo.height) };
}

function drag(e, i, frame) {
  if (e.button !== 0) return;
  e.preventDefault();
  e.stopPropagation();
  const el = e.target;
  el.setPointerCapture(e.pointerId);
  const move = (ev) => {
    const p = photoPoint(ev, frame);
    el.style.left = `${(100 * (p.x + 0.5)) / state.photo.width}%`;
    el.style.top = `${(100 * (p.y + 0.5)) / state.photo.height}%`;
  };
  const up = (ev) => {
    el.removeEventListener("pointermove", move);
    el.removeEventListener("pointerup", up);
    Object.assign(state.hints[i], photoPoint(ev, frame));
    hintsChanged();
  };
  el.addEventListener("pointermove", move);
  el.addEventListener("pointerup", up);
}

function panel(id, title, caption) {
  const fig = document.createElement("figure");
  fig.innerHTML = `<div class="frame" id="frame-${esc(id)}"><img id="out-${esc(id)}" alt="${esc(title)}"></div>` +
                  `<figcaption><b>${esc(title)}</b> ${caption}</figcaption>`;
  $("panels").appendChild(fig);
  return fig;
}

function buildPanels() {
  $("panels").innerHTML = "";
  panel("gray", "L (input)", "");
  for (const m of state.models) {
    const fig = panel(m.name, m.name, `<span class="quiet">${esc(m.label)}</span><br>` +
                      `<a id="download-${esc(m.name)}" download>download (full resolution)</a>`);
    if (m.takes_hints) {
      const frame = fig.querySelector(".frame");
      frame.classList.add("hintable");
      frame.querySelector("img").addEventListener("click", (e) => {
        state.hints.push({ ...photoPoint(e, frame), color: $("hint-color").value });
        hintsChanged();
      });
    }
  }
}

async function openFile(file) {
  if (!file) return;
  say("");
  $("note").textContent = `opening ${file.name} ...`;
  let r;
  try {
    r = await fetch(`/api/photo?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
  } catch (e) { $("note").textContent = ""; say(`${e}`); return; }
  if (!r.ok) { $("note").textContent = ""; say(await errorOf(r)); return; }
  state.photo = await r.json();
  state.hints = [];
  $("note").textContent = `${state.photo.name}: ${state.photo.width}x${state.photo.height} px` +
                          (state.photo.note ? ` (${state.photo.note})` : "");
  buildPanels();
  drawHints();
  load($("out-gray"), `/api/gray?photo=${state.photo.id}`);
  refresh();
}

async function start() {
  const r = await fetch("/api/models");
  state.models = await r.json();
  const cls = state.models.find((m) => m.classification);
  if (cls) {
    state.temperature = cls.temperature;
    $("temperature").value = cls.temperature;
    $("temperature-value").textContent = cls.temperature;
    $("temperature-box").hidden = false;
  }
  $("color-box").hidden = !state.models.some((m) => m.takes_hints);
  let timer = null;
  $("temperature").addEventListener("input", () => {
    state.temperature = $("temperature").value;
    $("temperature-value").textContent = state.temperature;
    clearTimeout(timer);
    timer = setTimeout(() => refresh((m) => m.classification), 150);
  });
  $("clear-hints").addEventListener("click", () => { state.hints = []; hintsChanged(); });
  $("file").addEventListener("change", (e) => openFile(e.target.files[0]));
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    openFile(e.dataTransfer.files[0]);
  });
  document.body.dataset.ready = "true";
}

start();
