// Moved markers of one radiograph: each becomes the reader's own landmark, saved like a grade,
// retried with growing pauses until the server has it.
import { gettext } from "./i18n.js";
import { firstMessage } from "./saver.js";

export class LandmarkQueue {
  constructor({ url, csrfToken, viewer, notify }) {
    this.url = url;
    this.csrfToken = csrfToken;
    this.viewer = viewer;
    this.notify = notify;
    this.pending = new Map();
    this.retry = null;
  }

  add({ joint, x, y }) {
    this.pending.set(joint, { joint, x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 });
    this.flush();
  }

  async flush(attempt = 0) {
    clearTimeout(this.retry);
    if (!this.pending.size) return;
    const sent = [...this.pending.values()];
    try {
      const response = await fetch(this.url, {
        method: "PUT",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken },
        body: JSON.stringify({ landmarks: sent }),
      });
      if (response.status === 400) {
        this.notify(firstMessage(await response.json()));
        this.pending.clear();
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      for (const item of sent) if (this.pending.get(item.joint) === item) this.pending.delete(item.joint);
      this.viewer.setLandmarks((await response.json()).landmarks);
      this.notify(gettext("Marker saved as your landmark."));
    } catch {
      this.notify(gettext("Marker position not saved yet; retrying."));
      this.retry = setTimeout(() => this.flush(attempt + 1), Math.min(30, 2 ** attempt) * 1000);
    }
  }
}
