// Active reading time: a second counts while the page is visible and the reader did something in
// the last minute.
const IDLE_AFTER_MS = 60_000;

// Starts watching the reader's input; the returned function says whether this second counts.
export function watchActivity() {
  let lastActivity = Date.now();
  for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
    window.addEventListener(type, () => { lastActivity = Date.now(); }, { capture: true, passive: true });
  }
  return () => document.visibilityState === "visible" && Date.now() - lastActivity < IDLE_AFTER_MS;
}

export function clockText(seconds) {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}
