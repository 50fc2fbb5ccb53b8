// Typing grades into a score table, the same on the single-image page and the visit form: a digit
// sets the whole grade and moves on; "." (or ",") right after it adds the half on a half-step scale
// (Genant erosion: "2" "." is 2.5, stored as level 5); on a 0-10 scale (foot erosion) "1" "0" is 10
// and a "1" alone is held until the next key or a moment without one.
//
// A cell is named by a target `{ sheet, code }`; the page says which target is selected, how a
// grade is committed there (set, then move on) and where notices go.
import { gettext, interpolate } from "./i18n.js";
import { HALF_KEY_WINDOW_MS, gradeText, levelForDigit, levelWithHalf } from "./grades.js";

const MODIFIERS = ["Shift", "Control", "Alt", "Meta"];
const sameCell = (a, b) => Boolean(a && b && a.sheet === b.sheet && a.code === b.code);

export class GradeEntry {
  // selected(): the target of the selected cell, or null; commit(target, level): set the grade and
  // move on when that cell is still the selected one; dimensionName(cell): the column's name.
  constructor({ selected, commit, notify, dimensionName, readOnly = () => false, holdMs = 1200 }) {
    Object.assign(this, { selected, commit, notify, dimensionName, readOnly, holdMs });
    this.held = null; // {target, timer}: a "1" on a 0-10 cell waiting for a "0"
    this.lastDigit = null; // {target, level, at}: the grade a following "." adds the half to
  }

  // A held "1" is set as soon as anything but a "0" follows, so a reader typing fast never loses
  // the next key to the wait nor has it land in the wrong cell: a digit or Enter sets it and moves
  // on as a grade does; any other key (a move, a letter) sets it and then acts from that cell.
  flushHeld(moveOn = true) {
    if (!this.held) return false;
    clearTimeout(this.held.timer);
    const { target } = this.held;
    this.held = null;
    if (moveOn) this.commit(target, 1);
    else {
      target.sheet.setValue(target.code, 1);
      this.notify("");
    }
    return true;
  }

  digit(digit) {
    if (this.readOnly()) return;
    const target = this.selected();
    if (this.held) {
      if (digit === 0 && sameCell(this.held.target, target)) {
        clearTimeout(this.held.timer);
        this.held = null;
        this.commit(target, 10);
        return;
      }
      this.flushHeld();
    }
    // The held "1" may have moved the cursor on: the digit goes to the cell selected now.
    const now = this.selected();
    const cell = now && now.sheet.cells.get(now.code);
    if (!cell) return;
    if (cell.maxGrade >= 10 && digit === 1) {
      this.held = { target: now, timer: setTimeout(() => this.flushHeld(), this.holdMs) };
      this.notify(gettext("1 — type 0 for 10"));
      return;
    }
    const level = levelForDigit(cell, digit);
    if (level === null) {
      this.notify(interpolate(gettext("%(dimension)s is graded 0–%(max)s."), { dimension: this.dimensionName(cell), max: gradeText(cell, cell.maxGrade) }));
      return;
    }
    this.lastDigit = { target: now, level, at: Date.now() };
    this.commit(now, level);
  }

  // "." adds a half to the grade just typed (the cursor has moved on), else to the selected cell's.
  half() {
    if (this.readOnly()) return;
    const recent = this.lastDigit && Date.now() - this.lastDigit.at < HALF_KEY_WINDOW_MS ? this.lastDigit : null;
    this.lastDigit = null;
    const target = recent ? recent.target : this.selected();
    const cell = target && target.sheet.cells.get(target.code);
    if (!cell) return;
    const level = recent ? recent.level : target.sheet.view(target.code).value;
    const half = levelWithHalf(cell, level);
    if (half === null) {
      this.notify(cell.step === 0.5
        ? interpolate(gettext("%(dimension)s is graded 0–%(max)s in half steps; type the whole grade, then a point."), { dimension: this.dimensionName(cell), max: gradeText(cell, cell.maxGrade) })
        : interpolate(gettext("%(dimension)s has no half grades."), { dimension: this.dimensionName(cell) }));
      return;
    }
    target.sheet.setValue(target.code, half);
    this.notify("");
  }

  // For bindSheetKeys' beforeKey: a held "1" is set before any other key acts (see flushHeld).
  beforeKey(event, command) {
    if (!this.held || /^[0-9]$/.test(event.key) || MODIFIERS.includes(event.key)) return false;
    // Ctrl+Enter submits what was typed, the held "1" included.
    if (event.key === "Enter" && !command) {
      event.preventDefault();
      this.flushHeld();
      return true;
    }
    this.flushHeld(false);
    return false;
  }
}
