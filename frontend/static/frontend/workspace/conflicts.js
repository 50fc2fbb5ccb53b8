// The conflict dialog of the reader pages: one fieldset per cell saved elsewhere meanwhile, where
// the reader keeps their own value or takes the saved one. An entry is { sheet, cell, name, legend }:
// `name` names the cell's radio buttons, unique on the page.
import { gettext, interpolate } from "./i18n.js";

export function renderConflictList(list, entries) {
  list.replaceChildren();
  for (const { cell, name, legend: legendText } of entries) {
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = legendText;
    fieldset.append(legend);
    const options = [
      ["mine", interpolate(gettext("Keep mine: %(value)s"), { value: cell.conflict.mine })],
      ["theirs", interpolate(gettext("Use the saved value: %(value)s"), { value: cell.conflict.theirs === null ? gettext("none") : cell.conflict.theirs })],
    ];
    for (const [choice, text] of options) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = name;
      input.value = choice;
      input.checked = choice === "mine";
      label.append(input, ` ${text}`);
      fieldset.append(label);
    }
    list.append(fieldset);
  }
}

// "Apply my choices" resolves every listed cell as chosen, closes the dialog, then `resolved` saves.
export function bindConflictDialog(dialog, { entries, resolved }) {
  dialog.querySelector('[data-action="resolve-conflicts"]').addEventListener("click", () => {
    for (const { sheet, cell, name } of entries()) {
      const choice = dialog.querySelector(`input[name="${name}"]:checked`)?.value || "mine";
      sheet.resolveConflict(cell.code, choice);
    }
    dialog.close();
    resolved();
  });
  // Closing with Escape would leave the conflict unresolved and the cells unsaved: the reader chooses.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
}
