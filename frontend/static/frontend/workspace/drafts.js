// What the reader pages keep in this browser: each radiograph's draft, under a key the single-image
// page and the visit form share (either picks up the other's unsaved work), and the reader's entry
// order, a preference of the reader across both pages.
import { gettext } from "./i18n.js";

export function draftKey(user, assignmentId) {
  return `ra-workspace:${user}:${assignmentId}`;
}

// A stored object, or {} when there is none, it does not parse, or storage is disabled.
export function readStored(key) {
  try {
    return JSON.parse(localStorage.getItem(key)) || {};
  } catch {
    return {};
  }
}

// Entry order: "column" runs down a column, then the next, as on the paper form; "joint" takes
// erosion then JSN of the same joint.
const orderKey = (user) => `ra-workspace-order:${user}`;

export function loadEntryOrder(user) {
  try {
    return localStorage.getItem(orderKey(user)) === "joint" ? "joint" : "column";
  } catch {
    return "column";
  }
}

// Keeps the order for the next page and shows it on its button; returns the order as kept.
export function storeEntryOrder(user, order, button) {
  const entryOrder = order === "joint" ? "joint" : "column";
  try {
    localStorage.setItem(orderKey(user), entryOrder);
  } catch {
    // Not kept across pages; still used on this one.
  }
  if (button) {
    button.setAttribute("aria-pressed", String(entryOrder === "joint"));
    button.textContent = entryOrder === "joint" ? gettext("Order: joints") : gettext("Order: columns");
  }
  return entryOrder;
}
