// The save-state badge of the reader pages: what one saver's state (or the worst of several) says.
import { gettext, interpolate } from "./i18n.js";

// `detail` is the saver's detail of that state (message, retryAt, reason); `unsaved` counts the
// changes kept in this browser.
export function showSaveState(element, { state, detail, unsaved }) {
  let text;
  switch (state) {
    case "saved": text = gettext("Saved"); break;
    case "dirty": text = gettext("Unsaved changes"); break;
    case "saving": text = gettext("Saving…"); break;
    case "conflict": text = gettext("Conflict: choose which values to keep"); break;
    case "error": text = interpolate(gettext("Not saved: %(message)s"), { message: detail.message || gettext("refused by the server") }); break;
    case "submitted": text = gettext("Submitted"); break;
    default: {
      const seconds = Math.max(0, Math.ceil(((detail.retryAt || Date.now()) - Date.now()) / 1000));
      text = detail.reason === "signed-out"
        ? interpolate(gettext("Signed out: log in again in another tab. %(n)s changes kept in this browser."), { n: unsaved })
        : interpolate(gettext("Offline: %(n)s changes kept in this browser, retrying in %(s)s s"), { n: unsaved, s: seconds });
    }
  }
  element.textContent = text;
  element.dataset.state = state;
}
