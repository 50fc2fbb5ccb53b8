// The training page: polls the run's progress while it is queued or running, moves the progress
// bar, and draws the loss and validation curves as inline SVG (no chart library).
import { gettext, interpolate } from "../workspace/i18n.js";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f5fa8", "#d97706", "#15803d", "#be123c"];
const SERIES_NAMES = {
  landmark_train_loss: gettext("landmarks, training"),
  landmark_val_loss: gettext("landmarks, validation"),
  grading_train_loss: gettext("grades, training"),
  grading_val_loss: gettext("grades, validation"),
  localisation_accuracy_net: gettext("localisation accuracy"),
  erosion_weighted_accuracy: gettext("erosion weighted accuracy"),
  jsn_weighted_accuracy: gettext("JSN weighted accuracy"),
};

const root = document.querySelector("[data-training-run]");
const source = document.getElementById("training-run");

function node(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== null) element.textContent = text;
  return element;
}

function niceNumber(value) {
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

// One line per series over the epochs; gaps (null) break a line. `fixed` pins the y range (0..1
// for accuracies) so curves of different runs compare at a glance.
export function plot(container, epochs, series, { fixed = null, empty = "" } = {}) {
  container.replaceChildren();
  const names = Object.keys(series).filter((name) => series[name].some((v) => v !== null));
  if (!epochs.length || !names.length) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = empty;
    container.append(p);
    return;
  }
  const width = 460, height = 220, left = 46, right = 12, top = 10, bottom = 34;
  const values = names.flatMap((name) => series[name].filter((v) => v !== null));
  let [low, high] = fixed || [Math.min(...values), Math.max(...values)];
  if (high - low < 1e-9) [low, high] = [low - 0.5, high + 0.5];
  if (!fixed) low = Math.min(low, 0);
  const first = epochs[0], last = epochs[epochs.length - 1];
  const x = (epoch) => left + ((epoch - first) / Math.max(last - first, 1)) * (width - left - right);
  const y = (value) => top + (1 - (value - low) / (high - low)) * (height - top - bottom);
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "tr-svg" });
  const title = node("title", {}, names.map((name) => SERIES_NAMES[name] || name).join(", "));
  svg.append(title);
  for (let i = 0; i <= 4; i += 1) {
    const value = low + ((high - low) * i) / 4;
    svg.append(node("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "tr-grid-line" }));
    svg.append(node("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", class: "tr-tick" }, niceNumber(value)));
  }
  const step = Math.max(1, Math.ceil(epochs.length / 8));
  epochs.forEach((epoch, index) => {
    if (index % step && index !== epochs.length - 1) return;
    svg.append(node("text", { x: x(epoch), y: height - bottom + 16, "text-anchor": "middle", class: "tr-tick" }, String(epoch)));
  });
  svg.append(node("text", { x: (left + width - right) / 2, y: height - 2, "text-anchor": "middle", class: "tr-axis" }, gettext("epoch")));
  names.forEach((name, index) => {
    const colour = COLOURS[index % COLOURS.length];
    let path = "";
    let pen = false;
    series[name].forEach((value, i) => {
      if (value === null) {
        pen = false;
        return;
      }
      path += `${pen ? "L" : "M"}${x(epochs[i]).toFixed(1)},${y(value).toFixed(1)}`;
      pen = true;
    });
    svg.append(node("path", { d: path, fill: "none", stroke: colour, "stroke-width": 2, "data-series": name }));
    series[name].forEach((value, i) => {
      if (value !== null) svg.append(node("circle", { cx: x(epochs[i]), cy: y(value), r: 2.5, fill: colour }));
    });
  });
  container.append(svg);
  const legend = document.createElement("ul");
  legend.className = "tr-legend";
  names.forEach((name, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = COLOURS[index % COLOURS.length];
    item.append(swatch, document.createTextNode(SERIES_NAMES[name] || name));
    legend.append(item);
  });
  container.append(legend);
}

function formatEta(seconds) {
  if (seconds === null || seconds === undefined) return gettext("estimating time left…");
  const whole = Math.round(seconds);
  const text = whole >= 60 ? `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s` : `${whole} s`;
  return interpolate(gettext("about %(time)s left"), { time: text });
}

function render(run) {
  root.dataset.status = run.status;
  root.querySelector('[data-field="status_label"]').textContent = run.status_label;
  const bar = root.querySelector('[data-field="bar"]');
  bar.setAttribute("aria-valuenow", String(run.percent));
  bar.querySelector("span").style.width = `${run.percent}%`;
  const parts = [`${run.percent}%`, interpolate(gettext("epoch %(epoch)s of %(epochs)s"), { epoch: run.epoch, epochs: run.epochs })];
  if (run.status === "queued") parts.push(gettext("waiting for a training worker"));
  else if (run.status === "running") parts.push(run.epoch >= run.epochs || run.percent >= 100 ? gettext("evaluating on held-out hands") : formatEta(run.eta_s));
  root.querySelector('[data-field="progress_text"]').textContent = parts.join(" · ");
  // The run's row in the list below says the same as the bar.
  const statusCell = document.querySelector(`[data-run-status="${run.id}"]`);
  if (statusCell) statusCell.textContent = run.status === "running" ? `${run.status_label} ${run.percent}%` : run.status_label;
  const epochsCell = document.querySelector(`[data-run-epochs="${run.id}"]`);
  if (epochsCell) epochsCell.textContent = `${run.epoch} / ${run.epochs}`;
  const curves = run.curves;
  plot(root.querySelector('[data-plot="loss"]'), curves.epochs, curves.loss, { empty: gettext("The curves appear after the first epoch.") });
  plot(root.querySelector('[data-plot="metric"]'), curves.epochs, curves.metric, { fixed: [0, 1], empty: gettext("The curves appear after the first epoch.") });
  root.querySelector('[data-field="metric_caption"]').textContent =
    curves.monitor === "train"
      ? gettext("Figures per epoch on the training hands (no held-out split yet)")
      : gettext("Validation figures per epoch");
}

async function poll(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (response.ok) {
      const run = await response.json();
      render(run);
      if (!run.active) {
        // Finished: the page itself shows the held-out figures and the retry button.
        window.location.replace(run.urls.page);
        return;
      }
    }
  } catch {
    // Offline for a moment: try again on the next tick.
  }
  window.setTimeout(() => poll(url), POLL_MS);
}

if (root && source) {
  const run = JSON.parse(source.textContent);
  render(run);
  if (run.active) window.setTimeout(() => poll(run.urls.progress), POLL_MS);
}
