// One grade cell of a score table as the reader sees it: its classes, what a screen reader says of
// its state, its suggestion's tooltip and the grade picker under the table. `format` writes a
// level as shown on that page.
import { gettext, interpolate } from "./i18n.js";

export function paintCell(td, view, visited) {
  td.classList.toggle("empty", view.kind === "empty");
  td.classList.toggle("suggested", view.kind === "suggested");
  td.classList.toggle("confirmed", view.kind === "confirmed");
  td.classList.toggle("from-model", view.kind === "confirmed" && view.source === "accepted");
  td.classList.toggle("pending", view.pending);
  td.classList.toggle("conflict", Boolean(view.conflict));
  td.classList.toggle("visited", visited);
}

// `shown` is the cell's value as written in it.
export function cellState(view, shown) {
  if (view.kind === "empty") return gettext("not graded");
  if (view.kind === "suggested") return interpolate(gettext("%(value)s, suggested, not confirmed"), { value: shown });
  return view.pending ? interpolate(gettext("%(value)s, not saved yet"), { value: shown }) : shown;
}

export function suggestionTitle(suggestion, format) {
  const percents = suggestion.distribution.map((p, grade) => `${format(grade)}: ${Math.round(p * 100)}%`).join("  ");
  return interpolate(gettext("Suggestion %(label)s (%(percents)s)"), { label: format(suggestion.label), percents });
}

// One button per grade of the cell's scale after a caption; `choose` sets the chosen grade.
export function fillGradePicker(picker, { caption, maxGrade, current, format, choose }) {
  const span = document.createElement("span");
  span.className = "picker-caption";
  span.textContent = caption;
  picker.append(span);
  for (let grade = 0; grade <= maxGrade; grade += 1) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = format(grade);
    button.setAttribute("aria-label", interpolate(gettext("Grade %(grade)s"), { grade: format(grade) }));
    if (current === grade) button.classList.add("current");
    button.addEventListener("click", () => choose(grade));
    picker.append(button);
  }
}
