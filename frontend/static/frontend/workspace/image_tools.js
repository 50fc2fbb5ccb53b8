// The image toolbar (frontend/includes/image_tools.html) on a page's viewer: the actions of its
// buttons, the brightness and contrast sliders, and what the viewer's notices say. `viewerOf`
// returns the viewer the tools act on now (the visit form switches it with the side).
import { gettext } from "./i18n.js";

export function imageActions(viewerOf) {
  return {
    "zoom-in": () => viewerOf().zoomStep(1),
    "zoom-out": () => viewerOf().zoomStep(-1),
    fit: () => viewerOf().fit(),
    "actual-size": () => viewerOf().actualSize(),
    invert: () => viewerOf().setWindow({ invert: !viewerOf().invert }),
    "reset-image": () => viewerOf().resetImage(),
  };
}

// Markers on or off on every viewer of the page, following the one on screen.
export function toggleMarkers(button, current, viewers = [current]) {
  const on = !current.showMarkers;
  for (const viewer of viewers) {
    viewer.showMarkers = on;
    viewer.requestDraw();
  }
  button.setAttribute("aria-pressed", String(on));
}

// Each toolbar button runs its action; `afterClick` then gives the keyboard back (the score table).
export function bindActionButtons(buttons, actions, afterClick = () => {}) {
  for (const button of buttons) {
    const handler = actions[button.dataset.action];
    if (!handler) continue;
    button.addEventListener("click", () => {
      handler();
      if (!["submit", "shortcuts"].includes(button.dataset.action)) afterClick();
    });
  }
}

export function bindWindowSliders(root, viewerOf, returnFocus = null) {
  root.querySelector('[data-control="brightness"]').addEventListener("input", (event) => viewerOf().setWindow({ brightness: Number(event.target.value) }));
  root.querySelector('[data-control="contrast"]').addEventListener("input", (event) => viewerOf().setWindow({ contrast: Number(event.target.value) }));
  if (!returnFocus) return;
  // A slider keeps the keyboard only while it is dragged: once set, digits and arrows go back to
  // the table (a reader who wants to nudge it by keys tabs to it again).
  for (const slider of root.querySelectorAll("input[type=range][data-control]")) {
    slider.addEventListener("change", returnFocus);
    slider.addEventListener("pointerup", returnFocus);
  }
}

// The toolbar shows the viewer's window after a change from the keyboard or a right-drag.
export function showWindow(root, viewer) {
  root.querySelector('[data-control="brightness"]').value = String(Math.round(viewer.brightness));
  root.querySelector('[data-control="contrast"]').value = String(Math.round(viewer.contrast));
  root.querySelector('[data-action="invert"]').setAttribute("aria-pressed", String(viewer.invert));
}

export function setNotice(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

// The notice for the viewer's "heatmap" event.
export function heatmapNotice(state) {
  if (state === "loading") return gettext("Loading heatmap…");
  if (state === "failed") return gettext("The heatmap could not be loaded.");
  return "";
}

// The notice for the viewer's "loading" event; null once the full resolution is in.
export function loadingNotice(detail) {
  if (detail.full) return gettext("Loading full resolution…");
  if (detail.failed) return gettext("Full resolution could not be loaded; zoom again to retry.");
  return null;
}
