// The adjudication viewer: the workspace's radiograph viewer, read-only, zoomed on the disputed
// joint, with the final grade and the move to the next or previous dispute on the keyboard.
import { gettext } from "../workspace/i18n.js";
import { Viewer } from "../workspace/viewer.js";
import { bindActionButtons, bindWindowSliders, heatmapNotice, imageActions, setNotice, toggleMarkers } from "../workspace/image_tools.js";
import { imageKeys } from "../workspace/keys.js";

const config = JSON.parse(document.getElementById("adjudication-config").textContent);
const root = document.getElementById("adjudication");
const $ = (selector) => root.querySelector(selector);
const notice = $("[data-viewer-notice]");

function say(text) {
  setNotice(notice, text);
}

const viewer = new Viewer({
  stage: $("[data-stage]"),
  width: config.width,
  height: config.height,
  displayUrl: config.urls.display_image,
  fullUrl: config.urls.full_image,
  shortLabels: config.short_labels,
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
  if (heatmapOn) say(heatmapNotice(event.detail.state));
});

// The workspace's image actions; this page does not follow the viewer's "window" event, so invert
// and reset update the toolbar themselves.
const tools = imageActions(() => viewer);
const actions = {
  ...tools,
  joint: zoomToJoint,
  invert: () => {
    tools.invert();
    $('[data-action="invert"]').setAttribute("aria-pressed", String(viewer.invert));
  },
  "reset-image": () => {
    tools["reset-image"]();
    $('[data-control="brightness"]').value = "0";
    $('[data-control="contrast"]').value = "0";
  },
  markers: () => toggleMarkers($('[data-action="markers"]'), viewer),
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
bindActionButtons(root.querySelectorAll("[data-action]"), actions);
bindWindowSliders(root, () => viewer);

const form = $("[data-final-form]");
let sent = false;
form.addEventListener("submit", () => {
  sent = true; // one final grade per page: a held-down key must not post twice
});

function go(which) {
  const url = config.urls[which];
  if (url) window.location.assign(url);
}

// N is the next dispute here, not actual size.
const keys = {
  ...imageKeys(actions),
  n: () => go("next"),
  ArrowRight: () => go("next"),
  p: () => go("previous"),
  ArrowLeft: () => go("previous"),
  z: actions.joint,
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
