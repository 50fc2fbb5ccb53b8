// Autosave: every change is sent shortly after the last keystroke; a failed save is retried with
// growing pauses; a 409 becomes conflicts the reader resolves. Only one request is in flight at a
// time, so the server sees the reader's changes in order.

const DEBOUNCE_MS = 450;
const MAX_BACKOFF_S = 30;

export class Saver extends EventTarget {
  constructor({ url, csrfToken, sheet }) {
    super();
    this.url = url;
    this.csrfToken = csrfToken;
    this.sheet = sheet;
    this.state = "saved";
    this.detail = {};
    this.failures = 0;
    this.timer = null;
    this.retryTimer = null;
    this.inFlight = null;
    window.addEventListener("online", () => this.flush());
  }

  #set(state, detail = {}) {
    this.state = state;
    this.detail = detail;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  schedule() {
    clearTimeout(this.timer);
    // While offline the pending retry will carry this change too; hammering the server helps nobody.
    if (this.state === "offline") return;
    if (this.state !== "conflict") this.#set("dirty");
    this.timer = setTimeout(() => this.flush(), DEBOUNCE_MS);
  }

  // Resolves true when nothing is left unsaved.
  async flush() {
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    while (this.inFlight) await this.inFlight;
    this.inFlight = this.#sendAll();
    try {
      return await this.inFlight;
    } finally {
      this.inFlight = null;
    }
  }

  async #sendAll() {
    for (;;) {
      const items = this.sheet.pendingItems();
      if (!items.length) {
        if (this.sheet.conflicts().length) {
          this.#set("conflict");
          return false;
        }
        this.#set("saved");
        return true;
      }
      this.#set("saving");
      this.sheet.markSent(items);
      let response;
      try {
        response = await fetch(this.url, {
          method: "PUT",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken, Accept: "application/json" },
          body: JSON.stringify({ grades: items }),
        });
      } catch (error) {
        return this.#retryLater("offline");
      }
      if (response.ok) {
        this.failures = 0;
        this.sheet.acknowledge((await response.json()).grades);
        continue;
      }
      if (response.status === 409) {
        const body = await response.json();
        const real = this.sheet.markConflicts(body.conflicts || []);
        if (real.length) {
          this.#set("conflict", { cells: real });
          this.dispatchEvent(new CustomEvent("conflict", { detail: { cells: real } }));
          return false;
        }
        continue;
      }
      if (response.status === 400) {
        // A refused save will be refused again: say why and stop (e.g. submitted in another tab).
        const body = await response.json().catch(() => ({}));
        this.#set("error", { message: firstMessage(body) });
        return false;
      }
      // 401/403 (the login expired), 5xx, proxies: keep the draft and try again later.
      return this.#retryLater(response.status === 401 || response.status === 403 ? "signed-out" : "offline");
    }
  }

  // Stops the scheduled save and waits for the one in flight, so a caller (the visit's submit) can
  // send the pending items itself in one request.
  async settle() {
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    while (this.inFlight) await this.inFlight;
  }

  #retryLater(reason) {
    this.failures += 1;
    const seconds = Math.min(MAX_BACKOFF_S, 2 ** (this.failures - 1));
    const until = Date.now() + seconds * 1000;
    this.#set("offline", { reason, retryAt: until });
    this.retryTimer = setTimeout(() => this.flush(), seconds * 1000);
    return false;
  }

  // A last attempt when the page goes away (keepalive outlives the page); the localStorage draft,
  // which keeps every edit until a save of it is answered, covers it if this fails too. Not while
  // offline or in conflict: the draft carries those edits to the next visit instead.
  sendBeacon() {
    clearTimeout(this.timer);
    const items = this.sheet.pendingItems();
    if (!items.length || !["dirty", "saving", "saved"].includes(this.state)) return;
    this.sheet.markSent(items);
    fetch(this.url, {
      method: "PUT",
      keepalive: true,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken },
      body: JSON.stringify({ grades: items }),
    }).catch(() => {});
  }
}

export function firstMessage(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.detail === "string") return body.detail;
  for (const value of Object.values(body)) {
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.length) return typeof value[0] === "string" ? value[0] : firstMessage(value[0]);
    if (value && typeof value === "object") {
      const nested = firstMessage(value);
      if (nested) return nested;
    }
  }
  return "";
}
