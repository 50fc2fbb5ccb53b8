// The reader's draft of one score table. The server's grades are the truth; `local` holds what the
// reader chose and the server has not confirmed yet. Every edit goes through `apply`, so undo,
// redo, autosave and the localStorage draft all see the same changes.
//
// The draft carries versions: the server state this page last knew for each cell (`known`), the
// version each pending edit was based on, and the saves sent but not yet answered (`sent`). A
// reload reconciles it with the server's copy: the newer version wins, a save this page sent is
// recognised as its own, and only a value someone else saved over the reader's edit is a conflict.
// A grade's source (accepted, edited, manual) is the server's decision; the page compares values.

export const DIMENSIONS = ["erosion", "jsn"];

const same = (a, b) => (a === null && b === null) || (a && b && a.value === b.value);
const MAX_SENT = 4;

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
          step: area.step || 1, weight: area.weight || 1,
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

  // True when the server's current version of the cell is a save this page (or its earlier copy)
  // sent: one version after a base the reader's edit chain started from, holding a value sent then.
  #ownSave(cell, version, value) {
    return (cell.local?.sent || []).some((sent) => sent.base + 1 === version && sent.value === value);
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

  // Pending: the server holds another value, or a save of another value is still on its way (the
  // reader went back to the saved value meanwhile; without sending it again, that save would win).
  #isPending(cell) {
    if (cell.local === undefined || cell.local.value === null) return false;
    if (!(cell.server && cell.server.value === cell.local.value)) return true;
    return (cell.local.sent || []).some((sent) => sent.value !== cell.local.value);
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

  // The model's own total of this radiograph (its suggestions, in grade points), or null unless
  // the model suggested every cell: a partial sum would read as a smaller score.
  suggestedTotal() {
    let total = 0;
    for (const cell of this.cells.values()) {
      if (!cell.suggestion) return null;
      total += cell.suggestion.label * cell.step * cell.weight;
    }
    return total;
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
      const sent = cell.local?.sent;
      if (after === null) {
        cell.local = cell.server ? { value: null, source: null, base: cell.server.version, sent } : undefined;
      } else if (cell.server && cell.server.value === after.value && !sent?.length) {
        cell.local = undefined;
      } else {
        cell.local = { value: after.value, source: after.source, base: cell.server ? cell.server.version : 0, sent };
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
  // With `only`, just the cells it names (those the reader has looked at).
  acceptAll({ only = null } = {}) {
    const changes = [];
    for (const cell of this.cells.values()) {
      if (only && !only.has(cell.code)) continue;
      if (cell.suggestion && !this.decided(cell)) changes.push({ code: cell.code, after: { value: cell.suggestion.label, source: "accepted" } });
    }
    return this.apply(changes);
  }

  // Cells holding a suggestion the reader has not confirmed or changed yet.
  unconfirmedSuggestions() {
    return [...this.cells.values()].filter((cell) => cell.suggestion && !this.decided(cell));
  }

  // Puts the suggestion back in place of the reader's grade (the paper's "reset to initial values").
  resetCell(code) {
    const cell = this.cells.get(code);
    if (!cell || !cell.suggestion) return [];
    return this.apply([{ code, after: { value: cell.suggestion.label, source: "accepted" } }]);
  }

  resetAll({ only = null } = {}) {
    const changes = [];
    for (const cell of this.cells.values()) {
      if (only && !only.has(cell.code)) continue;
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

  // Called just before items go out: the draft remembers them, so a reload that finds them on the
  // server knows they are this reader's own saves and not someone else's.
  markSent(items) {
    for (const item of items) {
      const cell = this.cells.get(item.area);
      if (!cell || cell.local === undefined) continue;
      cell.local.sent = [...(cell.local.sent || []), { base: item.version, value: item.value }].slice(-MAX_SENT);
    }
    this.dispatchEvent(new CustomEvent("sent"));
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
        if (cell.local.value === grade.value) cell.local = undefined;
        else {
          // Edited again while the save was on its way: the next save builds on the answered one.
          cell.local.base = grade.version;
          cell.local.sent = [];
        }
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
      if (theirs !== null && this.#ownSave(cell, conflict.current_version, theirs)) {
        // An earlier save of this reading (a keepalive from the page before a reload) got there
        // first; the reader's later edit simply builds on it.
        cell.local.base = conflict.current_version;
        cell.local.sent = [];
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
    const known = {};
    for (const cell of this.cells.values()) {
      if (cell.local !== undefined) locals[cell.code] = cell.local;
      if (cell.server) known[cell.code] = cell.server;
    }
    return { locals, known };
  }

  // Reconciles a stored draft with the server's copy the page was rendered from:
  // - the server state with the higher version wins (the page may have been read while a save of
  //   the previous page was still committing; the draft then knows the newer, saved value);
  // - an edit based on the version the server has is pending again;
  // - an edit based on an older version is rebased when the newer version is this reader's own
  //   save, dropped when the server already holds its value, and a conflict otherwise.
  restoreDraft(draft) {
    const { locals = {}, known = {} } = draft || {};
    for (const [code, state] of Object.entries(known)) {
      const cell = this.cells.get(code);
      if (!cell || !state || !Number.isInteger(state.version)) continue;
      if (state.version > (cell.server ? cell.server.version : 0)) cell.server = { ...state };
    }
    for (const [code, local] of Object.entries(locals)) {
      const cell = this.cells.get(code);
      if (!cell || !local || !Number.isInteger(local.base)) continue;
      const serverVersion = cell.server ? cell.server.version : 0;
      const restored = { ...local, sent: local.sent || [] };
      if (restored.base === serverVersion) {
        cell.local = restored;
      } else if (restored.base > serverVersion) {
        // Based on a version this page has not seen saved: send it again on what the server has;
        // a 409 then tells whether that version is the reader's own.
        cell.local = { ...restored, base: serverVersion };
      } else if (restored.value === null) {
        continue; // a cleared cell someone has since graded: their grade stands
      } else if (cell.server && cell.server.value === restored.value) {
        continue; // already saved
      } else if (cell.server && this.#ownSave({ local: restored }, serverVersion, cell.server.value)) {
        cell.local = { ...restored, base: serverVersion, sent: [] };
      } else {
        cell.local = { ...restored, base: serverVersion };
        cell.conflict = { mine: restored.value, theirs: cell.server ? cell.server.value : null, version: serverVersion };
      }
    }
    this.#emit([...this.cells.keys()]);
  }

  // Totals and completeness -----------------------------------------------------------------

  totals() {
    const totals = { erosion: 0, jsn: 0, unconfirmed: 0, missing: 0 };
    for (const cell of this.cells.values()) {
      const decided = this.decided(cell);
      if (decided) totals[cell.dimension] += decided.value * cell.step * cell.weight;
      else if (cell.suggestion) totals.unconfirmed += 1;
      else totals.missing += 1;
    }
    totals.image = totals.erosion + totals.jsn;
    return totals;
  }

  // The joints with every scored cell decided: the viewer marks them done.
  completedJoints() {
    return new Set(
      this.joints.filter((row) => DIMENSIONS.every((d) => !row[d] || this.decided(this.cells.get(row[d].code)))).map((row) => row.joint),
    );
  }

  // Every cell's grade is the model's suggestion, taken without the reader looking at the cell.
  allUnlookedSuggestions(visited) {
    return [...this.cells.values()].every((cell) => {
      const decided = this.decided(cell);
      return decided && cell.suggestion && decided.value === cell.suggestion.label && !visited.has(cell.code);
    });
  }

  undecidedCount() {
    return [...this.cells.values()].filter((cell) => !this.decided(cell)).length;
  }
}
