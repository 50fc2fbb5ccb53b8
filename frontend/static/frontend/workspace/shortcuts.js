// The keyboard map, in one place: the "?" dialog is built from this list, so it cannot drift from
// the handler in main.js that reads the same names.
import { gettext } from "./i18n.js";

export function shortcutList({ assisted, needLook = false }) {
  const rows = [
    [["↑", "↓"], gettext("Previous / next joint")],
    [["Tab", "Shift+Tab"], gettext("Next / previous joint; after the last erosion cell, on to JSN")],
    [["←", "→", "E", "J"], gettext("Grade erosion (E) or joint space narrowing (J)")],
    [["0", "…", "5"], gettext("Set the grade of the selected cell and move to the next joint")],
    [["1", "0"], gettext("Foot erosion 10 (a 1 alone is set at the next key)")],
    [[".", ","], gettext("Add a half to the grade just typed (half-step scales such as Genant erosion: 2 then . is 2.5)")],
    [["O"], gettext("Entry order: column by column, or joint by joint (erosion then JSN)")],
  ];
  if (assisted) {
    rows.push(
      [["Enter"], gettext("Confirm the suggestion in the selected cell and move on")],
      [["A"], needLook
        ? gettext("Accept the suggestions of the cells you have looked at (moved to)")
        : gettext("Accept all suggestions that are not confirmed yet")],
      [["R"], gettext("Reset the selected cell to its suggestion")],
      [["Shift+R"], gettext("Reset every cell to its suggestion")],
    );
  }
  rows.push(
    [["Ctrl+Z"], gettext("Undo")],
    [["Ctrl+Y", "Ctrl+Shift+Z"], gettext("Redo")],
    [["Ctrl+S"], gettext("Save now")],
    [["Ctrl+Enter"], gettext("Submit and open the next radiograph")],
    [["+", "−"], gettext("Zoom in / out around the selected joint")],
    [["F"], gettext("Fit the image to the viewer")],
    [["N"], gettext("Actual size (1:1)")],
    [["I"], gettext("Invert grey levels")],
    [["W"], gettext("Reset brightness, contrast and zoom")],
    [["M"], gettext("Show or hide the joint markers")],
    [["H"], gettext("Show or hide the model heatmap")],
    [["?"], gettext("This list")],
    [[gettext("Wheel")], gettext("Zoom at the pointer")],
    [[gettext("Drag")], gettext("Pan; drag a marker to move it (saved as your landmark)")],
    [[gettext("Right-drag")], gettext("Contrast (left-right) and brightness (up-down)")],
    [[gettext("Click")], gettext("A marker or a cell selects its joint")],
  );
  return rows;
}

// Opens the "?" dialog, its table filled from `rows()` the first time.
export function showShortcutDialog(dialog, rows) {
  const table = dialog.querySelector("[data-shortcut-table]");
  if (!table.rows.length) {
    for (const [keys, description] of rows()) {
      const tr = table.insertRow();
      tr.insertCell().innerHTML = keys.map((key) => `<kbd>${key}</kbd>`).join(" ");
      tr.insertCell().textContent = description;
    }
  }
  dialog.showModal();
}
