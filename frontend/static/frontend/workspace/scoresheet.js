// The reader's draft of one score table. The server's grades are the truth; `local` holds what the
// reader chose and the server has not confirmed yet. Every edit goes through `apply`, so undo,
// redo, autosave and the localStorage draft all see the same changes.

export const DIMENSIONS = ["erosion", "jsn"];

const same = (a, b) => (a === null && b === null) || (a && b && a.value === b.value && a.source === b.source);

export class ScoreSheet extends EventTarget {
  constructor({ rows, grades, readOnly = false }) {
    super();
    this.readOnly = readOnly;
    this.joints = rows.filter((row) => !row.group_heading);
    this.cells = new Map();
    for (const row of this.joints) {
      for (const dimension of DIMENSIONS) {
        const area = row[dimension];
        if (!area) continue;
        this.cells.set(area.code, {
          code: area.code, joint: row.joint, label: row.label, dimension, maxGrade: area.max_grade,
          server: null, local: undefined, suggestion: null, conflict: null,
        });
      }
    }
    for (const grade of grades) this.#setServer(grade);
    this.undoStack = [];
    this.redoStack = [];
    this.modelVersion = null;
  }

  #setServer(grade) {
    const cell = this.cells.get(grade.area);
    if (cell) cell.server = { value: grade.value, version: grade.version, source: grade.source };
  }

  #emit(codes) {
    this.dispatchEvent(new CustomEvent("change", { detail: { codes } }));
  }

  // What the reader has decided for a cell: their pending choice, else the saved grade, else null.
  decided(cell) {
    if (cell.local !== undefined) return cell.local.value === null ? null : { value: cell.local.value, source: cell.local.source };
    return cell.server ? { value: cell.server.value, source: cell.server.source } : null;
  }

  view(code) {
    const cell = this.cells.get(code);
    const decided = this.decided(cell);
    if (decided) {
      return { value: decided.value, kind: "confirmed", source: decided.source, pending: this.#isPending(cell), conflict: cell.conflict };
    }
    if (cell.suggestion) return { value: cell.suggestion.label, kind: "suggested", pending: false, conflict: cell.conflict };
    return { value: null, kind: "empty", pending: false, conflict: cell.conflict };
  }

  #isPending(cell) {
    if (cell.local === undefined || cell.local.value === null) return false;
    return !(cell.server && cell.server.value === cell.local.value && cell.server.source === cell.local.source);
  }

  setSuggestions(payload) {
    this.modelVersion = payload.model_version;
    for (const [code, suggestion] of Object.entries(payload.suggestions || {})) {
      const cell = this.cells.get(code);
      if (cell && Number.isInteger(suggestion.label) && suggestion.label <= cell.maxGrade) cell.suggestion = suggestion;
    }
    this.#emit([...this.cells.keys()]);
  }

  hasSuggestions() {
    return [...this.cells.values()].some((cell) => cell.suggestion);
  }

  // Edits -----------------------------------------------------------------------------------

  // changes: [{code, after: {value, source} | null}]; returns the codes that changed.
  apply(changes, { record = true } = {}) {
    if (this.readOnly) return [];
    const done = [];
    for (const { code, after } of changes) {
      const cell = this.cells.get(code);
      if (!cell) continue;
      const before = this.decided(cell);
      if (same(before, after)) continue;
      if (after === null) {
        cell.local = cell.server ? { value: null, source: null, base: cell.server.version } : undefined;
      } else if (cell.server && cell.server.value === after.value && cell.server.source === after.source) {
        cell.local = undefined;
      } else {
        cell.local = { value: after.value, source: after.source, base: cell.server ? cell.server.version : 0 };
      }
      done.push({ code, before, after });
    }
    if (done.length && record) {
      this.undoStack.push(done);
      this.redoStack = [];
    }
    if (done.length) this.#emit(done.map((change) => change.code));
    return done.map((change) => change.code);
  }

  sourceFor(cell, value) {
    if (!cell.suggestion) return "manual";
    return value === cell.suggestion.label ? "accepted" : "edited";
  }

  setValue(code, value) {
    const cell = this.cells.get(code);
    if (!cell || value < 0 || value > cell.maxGrade) return [];
    return this.apply([{ code, after: { value, source: this.sourceFor(cell, value) } }]);
  }

  // Confirms every suggestion the reader has not decided on; leaves their own grades alone.
  acceptAll() {
    const changes = [];
    for (const cell of this.cells.values()) {
      if (cell.suggestion && !this.decided(cell)) changes.push({ code: cell.code, after: { value: cell.suggestion.label, source: "accepted" } });
    }
    return this.apply(changes);
  }

  // Puts the suggestion back in place of the reader's grade (the paper's "reset to initial values").
  resetCell(code) {
    const cell = this.cells.get(code);
    if (!cell || !cell.suggestion) return [];
    return this.apply([{ code, after: { value: cell.suggestion.label, source: "accepted" } }]);
  }

  resetAll() {
    const changes = [];
    for (const cell of this.cells.values()) {
      if (cell.suggestion) changes.push({ code: cell.code, after: { value: cell.suggestion.label, source: "accepted" } });
    }
    return this.apply(changes);
  }

  undo() {
    const action = this.undoStack.pop();
    if (!action) return [];
    this.redoStack.push(action);
    return this.apply(action.map(({ code, before }) => ({ code, after: before })).reverse(), { record: false });
  }

  redo() {
    const action = this.redoStack.pop();
    if (!action) return [];
    this.undoStack.push(action);
    return this.apply(action.map(({ code, after }) => ({ code, after })), { record: false });
  }

  // Saving ----------------------------------------------------------------------------------

  pendingItems() {
    const items = [];
    for (const cell of this.cells.values()) {
      if (this.#isPending(cell) && !cell.conflict) {
        items.push({ area: cell.code, value: cell.local.value, version: cell.local.base, source: cell.local.source });
      }
    }
    return items;
  }

  hasUnsaved() {
    return [...this.cells.values()].some((cell) => this.#isPending(cell) || cell.conflict);
  }

  acknowledge(savedGrades) {
    const codes = [];
    for (const grade of savedGrades) {
      const cell = this.cells.get(grade.area);
      if (!cell) continue;
      this.#setServer(grade);
      if (cell.local !== undefined) {
        if (cell.local.value === grade.value && cell.local.source === grade.source) cell.local = undefined;
        else cell.local.base = grade.version; // edited again while the save was on its way
      }
      codes.push(cell.code);
    }
    this.#emit(codes);
  }

  // A 409 lists the stale cells. Where the server already holds the reader's value there is
  // nothing to choose; the rest become conflicts the reader resolves.
  markConflicts(conflicts) {
    const real = [];
    for (const conflict of conflicts) {
      const cell = this.cells.get(conflict.area);
      if (!cell || cell.local === undefined) continue;
      const theirs = conflict.current_value;
      cell.server = theirs === null ? null : { value: theirs, version: conflict.current_version, source: cell.server?.source || "manual" };
      if (theirs !== null && theirs === cell.local.value) {
        cell.server.source = cell.local.source;
        cell.local = undefined;
        continue;
      }
      cell.conflict = { mine: cell.local.value, theirs, version: conflict.current_version };
      real.push(cell);
    }
    this.#emit(conflicts.map((conflict) => conflict.area));
    return real;
  }

  conflicts() {
    return [...this.cells.values()].filter((cell) => cell.conflict);
  }

  resolveConflict(code, keep) {
    const cell = this.cells.get(code);
    if (!cell || !cell.conflict) return;
    if (keep === "mine" && cell.local) cell.local.base = cell.conflict.version;
    else cell.local = undefined;
    cell.conflict = null;
    this.#emit([code]);
  }

  // The localStorage draft ------------------------------------------------------------------

  toDraft() {
    const locals = {};
    for (const cell of this.cells.values()) if (cell.local !== undefined) locals[cell.code] = cell.local;
    return locals;
  }

  // A draft edit made on the version the server still has is simply pending again; one made on an
  // older version is a conflict unless both hold the same value.
  restoreDraft(locals) {
    for (const [code, local] of Object.entries(locals || {})) {
      const cell = this.cells.get(code);
      if (!cell || !local) continue;
      const serverVersion = cell.server ? cell.server.version : 0;
      if (local.base === serverVersion) {
        cell.local = local;
      } else if (local.value !== null && !(cell.server && cell.server.value === local.value)) {
        cell.local = { ...local, base: serverVersion };
        cell.conflict = { mine: local.value, theirs: cell.server ? cell.server.value : null, version: serverVersion };
      }
    }
    this.#emit([...this.cells.keys()]);
  }

  // Totals and completeness -----------------------------------------------------------------

  totals() {
    const totals = { erosion: 0, jsn: 0, unconfirmed: 0, missing: 0 };
    for (const cell of this.cells.values()) {
      const decided = this.decided(cell);
      if (decided) totals[cell.dimension] += decided.value;
      else if (cell.suggestion) totals.unconfirmed += 1;
      else totals.missing += 1;
    }
    totals.image = totals.erosion + totals.jsn;
    return totals;
  }

  undecidedCount() {
    return [...this.cells.values()].filter((cell) => !this.decided(cell)).length;
  }
}
