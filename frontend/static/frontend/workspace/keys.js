// The score sheet's keyboard, shared by the single-image page and the visit form: which key means
// what and in which order they are tried. Each page says what a move, a grade or a letter does on
// its own table; keys it leaves out (no `half`) fall through to the letters.
const prevent = (event, handler) => {
  event.preventDefault();
  handler();
};

export function bindSheetKeys({
  ready = () => true, beforeKey = null, submit, undo, redo, saveNow, tab, up, down, left, right, digit, half = null, enter, letters,
}) {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || document.querySelector("dialog[open]") || !ready()) return;
    const { target, key } = event;
    const command = event.ctrlKey || event.metaKey;
    if (beforeKey && beforeKey(event, command)) return;
    if (command && key === "Enter") return prevent(event, submit);
    if (command && !event.altKey) {
      const lower = key.toLowerCase();
      if (lower === "z") return prevent(event, event.shiftKey ? redo : undo);
      if (lower === "y") return prevent(event, redo);
      if (lower === "s") return prevent(event, saveNow);
      return;
    }
    if (event.altKey || target.closest?.("input, select, textarea")) return;
    if (target.closest?.("button, a") && (key === "Enter" || key === " ")) return;
    if (key === "Tab") {
      // Inside the table Tab walks the cells; from the last (or first) one it leaves as usual.
      if (!target.closest?.("[data-scores]") && target !== document.body) return;
      if (tab(event.shiftKey ? -1 : 1)) event.preventDefault();
      return;
    }
    if (key === "ArrowDown") return prevent(event, down);
    if (key === "ArrowUp") return prevent(event, up);
    if (key === "ArrowLeft") return prevent(event, left);
    if (key === "ArrowRight") return prevent(event, right);
    if (/^[0-9]$/.test(key)) return prevent(event, () => digit(Number(key)));
    if (half && (key === "." || key === ",")) return prevent(event, half);
    if (key === "Enter") return prevent(event, enter);
    // Shift+R is a key of its own where the page gives it one; elsewhere it is R.
    const letter = key === "R" && event.shiftKey && letters.R ? "R" : key.length === 1 ? key.toLowerCase() : key;
    if (letters[letter]) prevent(event, letters[letter]);
  });
}

// The image keys, the same on every page with a viewer (the adjudication viewer included).
export function imageKeys(actions) {
  return {
    f: actions.fit,
    n: actions["actual-size"],
    i: actions.invert,
    w: actions["reset-image"],
    m: actions.markers,
    h: actions.heatmap,
    "+": actions["zoom-in"],
    "=": actions["zoom-in"],
    "-": actions["zoom-out"],
  };
}
