// The adjudication viewer: the workspace's radiograph viewer, read-only, zoomed on the disputed
// joint, with the final grade and the move to the next or previous dispute on the keyboard.
import { gettext } from "../workspace/i18n.js";
import { Viewer } from "../workspace/viewer.js";

const config = JSON.parse(document.getElementById("adjudication-config").textContent);
const root = document.getElementById("adjudication");
const $ = (selector) => root.querySelector(selector);
const notice = $("[data-viewer-notice]");

function say(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

const viewer = new Viewer({
  stage: $("[data-stage]"),
  width: config.width,
  height: config.height,
  displayUrl: config.urls.display_image,
  fullUrl: config.urls.full_image,
  shortLabels: {},
  filter: document.getElementById("window-level"),
  editable: false,
});
viewer.setLandmarks(config.landmarks);
viewer.select(config.joint);

function zoomToJoint() {
  const point = viewer.landmarks.get(config.joint);
  if (!point) return viewer.fit();
  viewer.scale = viewer.fitScale() * 2.5;
  viewer.fitted = false;
  viewer.centerOn(point);
}

viewer.load().then(
  () => {
    zoomToJoint();
    root.dataset.state = "ready";
    if (!viewer.landmarks.has(config.joint)) say(gettext("No landmark for this joint: look for it on the whole film."));
  },
  () => {
    root.dataset.state = "failed";
    say(gettext("The radiograph could not be loaded."));
  },
);

let heatmapOn = false;
viewer.addEventListener("heatmap", (event) => {
  if (!heatmapOn) return;
  const { state } = event.detail;
  if (state === "loading") say(gettext("Loading heatmap…"));
  else if (state === "failed") say(gettext("The heatmap could not be loaded."));
  else say("");
});

const actions = {
  "zoom-in": () => viewer.zoomStep(1),
  "zoom-out": () => viewer.zoomStep(-1),
  fit: () => viewer.fit(),
  joint: zoomToJoint,
  invert: () => {
    viewer.setWindow({ invert: !viewer.invert });
    $('[data-action="invert"]').setAttribute("aria-pressed", String(viewer.invert));
  },
  "reset-image": () => {
    viewer.resetImage();
    $('[data-control="brightness"]').value = "0";
    $('[data-control="contrast"]').value = "0";
  },
  markers: () => {
    viewer.showMarkers = !viewer.showMarkers;
    $('[data-action="markers"]').setAttribute("aria-pressed", String(viewer.showMarkers));
    viewer.requestDraw();
  },
  heatmap: () => {
    if (!config.urls.heatmap) {
      say(gettext("No heatmap: the serving model made no suggestion for this area."));
      return;
    }
    heatmapOn = !heatmapOn;
    $('[data-action="heatmap"]').setAttribute("aria-pressed", String(heatmapOn));
    viewer.setHeatmap(heatmapOn ? config.urls.heatmap : null);
    if (!heatmapOn) say("");
  },
};
for (const button of root.querySelectorAll("[data-action]")) {
  button.addEventListener("click", () => actions[button.dataset.action]());
}
$('[data-control="brightness"]').addEventListener("input", (event) => viewer.setWindow({ brightness: Number(event.target.value) }));
$('[data-control="contrast"]').addEventListener("input", (event) => viewer.setWindow({ contrast: Number(event.target.value) }));

const form = $("[data-final-form]");
let sent = false;
form.addEventListener("submit", () => {
  sent = true; // one final grade per page: a held-down key must not post twice
});

function go(which) {
  const url = config.urls[which];
  if (url) window.location.assign(url);
}

const keys = {
  n: () => go("next"),
  ArrowRight: () => go("next"),
  p: () => go("previous"),
  ArrowLeft: () => go("previous"),
  h: actions.heatmap,
  m: actions.markers,
  i: actions.invert,
  f: actions.fit,
  z: actions.joint,
  w: actions["reset-image"],
  "+": actions["zoom-in"],
  "=": actions["zoom-in"],
  "-": actions["zoom-out"],
};

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target instanceof HTMLInputElement && event.target.type !== "range";
  if (typing) return; // the note field takes its own keys
  if (/^[0-9]$/.test(event.key)) {
    const button = form.querySelector(`[data-grade="${event.key}"]`);
    if (button && !sent) {
      event.preventDefault();
      form.requestSubmit(button);
    }
    return;
  }
  const action = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (action) {
    event.preventDefault();
    action();
  }
});
