// The heatmap's explanation method: a small picker beside the Heatmap button. The server lists the
// methods with the best-measured one first and marked default; a reader's choice is remembered in
// this browser. Maps are computed once per model version, area and method on the server.
import { gettext } from "./i18n.js";

const STORAGE_KEY = "ra-workspace:heatmap-method";

export class HeatmapMethodPicker {
  constructor({ button, url, onChange }) {
    this.methods = [];
    this.chosen = null;
    this.onChange = onChange;
    this.select = document.createElement("select");
    this.select.dataset.heatmapMethod = "";
    this.select.setAttribute("aria-label", gettext("Heatmap method"));
    this.select.title = gettext("Heatmap method");
    this.select.hidden = true;
    this.select.addEventListener("change", () => {
      this.chosen = this.select.value;
      try {
        localStorage.setItem(STORAGE_KEY, this.chosen);
      } catch {
        // Storage disabled: the choice lasts for this page only.
      }
      this.onChange();
    });
    button.after(this.select);
    // Shown only while the heatmap is on, so the toolbar keeps its one line otherwise.
    this.button = button;
    new MutationObserver(() => this.#show()).observe(button, { attributes: true, attributeFilter: ["aria-pressed"] });
    if (url) this.load(url);
  }

  #show() {
    this.select.hidden = this.methods.length < 2 || this.button.getAttribute("aria-pressed") !== "true";
  }

  async load(url) {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      this.methods = await response.json();
    } catch {
      return; // no list: the server's default method is used
    }
    let stored = null;
    try {
      stored = localStorage.getItem(STORAGE_KEY);
    } catch {
      stored = null;
    }
    const fallback = this.methods.find((item) => item.default) || this.methods[0];
    this.chosen = this.methods.some((item) => item.key === stored) ? stored : fallback?.key ?? null;
    for (const item of this.methods) {
      const option = document.createElement("option");
      option.value = item.key;
      option.textContent = item.default ? `${item.label} (${gettext("best measured")})` : item.label;
      this.select.append(option);
    }
    if (this.chosen) this.select.value = this.chosen;
    this.#show();
    // Only a map on screen needs redrawing; an idle toggle keeps the viewer's notices as they are.
    if (this.button.getAttribute("aria-pressed") === "true") this.onChange();
  }

  // The map URL for the chosen method; the default needs no parameter, so its cache entry is shared.
  url(base) {
    const method = this.methods.find((item) => item.key === this.chosen);
    if (!base || !method || method.default) return base;
    return `${base}${base.includes("?") ? "&" : "?"}method=${encodeURIComponent(method.key)}`;
  }
}
