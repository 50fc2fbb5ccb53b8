// The reader workspace: wires the score sheet, autosave, the viewer and the keyboard together.
import { gettext, interpolate } from "./i18n.js";
import { DIMENSIONS, ScoreSheet } from "./scoresheet.js";
import { Saver, firstMessage } from "./saver.js";
import { shortcutList, showShortcutDialog } from "./shortcuts.js";
import { Viewer } from "./viewer.js";
import { gradeText } from "./grades.js";
import { GradeEntry } from "./grade_entry.js";
import { HeatmapMethodPicker } from "./heatmap_method.js";
import { draftKey as draftKeyOf, loadEntryOrder, readStored, storeEntryOrder } from "./drafts.js";
import { showSaveState } from "./save_state.js";
import { LandmarkQueue } from "./landmarks.js";
import { bindConflictDialog, renderConflictList } from "./conflicts.js";
import { bindSheetKeys, imageKeys } from "./keys.js";
import { bindActionButtons, bindWindowSliders, heatmapNotice, imageActions, loadingNotice, setNotice, showWindow, toggleMarkers } from "./image_tools.js";
import { clockText, watchActivity } from "./activity.js";
import { cellState, fillGradePicker, paintCell, suggestionTitle } from "./cells.js";
import { csrfToken, pageConfig, suggestionMode, unlookedSubmitCheck } from "./reader_page.js";

const config = pageConfig("workspace-config");
const root = document.getElementById("workspace");
const $ = (selector) => root.querySelector(selector);
const { assisted, needLook } = suggestionMode(config.project);
const readOnly = config.assignment.status === "submitted";
const DIMENSION_NAMES = { erosion: gettext("Erosion"), jsn: gettext("JSN"), ...(config.project.dimension_labels || {}) };

// Draft in this browser: survives a reload, a crash or a lost connection -----------------------

const draftKey = draftKeyOf(config.user, config.assignment.id);
const storedDraft = readStored(draftKey);
let activeSeconds = Number.isInteger(storedDraft.seconds) ? storedDraft.seconds : 0;
// Cells the cursor has been on in this read: the ones the reader has looked at.
const visited = new Set(Array.isArray(storedDraft.visited) ? storedDraft.visited : []);
let submitted = false;

function saveDraft() {
  if (readOnly || submitted) return;
  try {
    const { locals, known } = sheet.toDraft();
    localStorage.setItem(draftKey, JSON.stringify({ locals, known, visited: [...visited], seconds: activeSeconds, active, savedAt: Date.now() }));
  } catch {
    // Storage full or disabled: the server copy is still saved as usual.
  }
}

const sheet = new ScoreSheet({ rows: config.rows, grades: config.grades, readOnly });
const saver = new Saver({ url: config.urls.grades, csrfToken, sheet });

// Table -------------------------------------------------------------------------------------

const cellElements = new Map();
const rowElements = new Map();
const jointRows = sheet.joints;
let active = { joint: null, dimension: "erosion" };

function buildTable() {
  const body = $("[data-score-rows]");
  for (const row of config.rows) {
    const tr = document.createElement("tr");
    if (row.group_heading) {
      tr.className = "group";
      const th = document.createElement("th");
      th.colSpan = 3;
      th.scope = "rowgroup";
      th.textContent = row.label;
      tr.append(th);
      body.append(tr);
      continue;
    }
    tr.dataset.joint = row.joint;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = row.label;
    th.title = row.label; // long wrist names are cut with an ellipsis
    tr.append(th);
    for (const dimension of DIMENSIONS) {
      const td = document.createElement("td");
      td.setAttribute("role", "gridcell");
      if (!row[dimension]) {
        td.className = "na";
        td.textContent = "X";
        td.setAttribute("aria-disabled", "true");
        td.setAttribute("aria-label", interpolate(gettext("%(joint)s, %(dimension)s: not scored"), { joint: row.label, dimension: DIMENSION_NAMES[dimension] }));
      } else {
        td.dataset.code = row[dimension].code;
        td.tabIndex = -1;
        td.addEventListener("click", () => activate(row.joint, dimension));
        cellElements.set(row[dimension].code, td);
      }
      tr.append(td);
    }
    rowElements.set(row.joint, tr);
    body.append(tr);
  }
  const maxOf = (dimension) => Math.max(...jointRows.filter((row) => row[dimension]).map((row) => row[dimension].max_grade * (row[dimension].step || 1)));
  for (const dimension of DIMENSIONS) {
    const head = root.querySelector(`[data-dimension-head="${dimension}"]`);
    if (config.project.dimension_labels?.[dimension]) head.querySelector("button").textContent = DIMENSION_NAMES[dimension];
    if (jointRows.some((row) => row[dimension])) head.querySelector("button").insertAdjacentHTML("beforeend", ` <small>0–${maxOf(dimension)}</small>`);
  }
  // A scheme that names its total (Genant, Larsen) says so in the two grand-total rows.
  const totalName = config.project.dimension_labels?.total;
  if (totalName) {
    root.querySelector('[data-total="image"]').closest("tr").querySelector("th").textContent = interpolate(gettext("%(total)s, this image"), { total: totalName });
    root.querySelector('[data-total="visit"]').closest("tr").querySelector("th").textContent = interpolate(gettext("%(total)s, visit"), { total: totalName });
  }
}

function renderCell(code) {
  const td = cellElements.get(code);
  const cell = sheet.cells.get(code);
  const view = sheet.view(code);
  td.textContent = gradeText(cell, view.value);
  paintCell(td, view, visited.has(code));
  const state = cellState(view, gradeText(cell, view.value));
  td.setAttribute("aria-label", interpolate(gettext("%(joint)s, %(dimension)s: %(state)s"), { joint: cell.label, dimension: DIMENSION_NAMES[cell.dimension], state }));
  if (cell.suggestion) td.title = suggestionTitle(cell.suggestion, (level) => gradeText(cell, level));
  else td.removeAttribute("title");
}

function renderAllCells() {
  for (const code of cellElements.keys()) renderCell(code);
}

function activeCode() {
  const row = jointRows.find((item) => item.joint === active.joint);
  return row && row[active.dimension] ? row[active.dimension].code : null;
}

// `look`: the reader moved here (a key, a click); the page's own jumps (opening, after A) are not a look.
function activate(joint, dimension, { focus = true, look = true } = {}) {
  const row = jointRows.find((item) => item.joint === joint);
  if (!row) return;
  if (!row[dimension]) dimension = DIMENSIONS.find((name) => row[name]);
  active = { joint, dimension };
  if (look && !visited.has(row[dimension].code)) {
    visited.add(row[dimension].code);
    cellElements.get(row[dimension].code)?.classList.add("visited");
  }
  for (const [name, tr] of rowElements) tr.classList.toggle("active", name === joint);
  for (const [code, td] of cellElements) {
    const isActive = code === row[dimension].code;
    td.classList.toggle("active", isActive);
    td.tabIndex = isActive ? 0 : -1;
    td.setAttribute("aria-selected", String(isActive));
  }
  for (const button of root.querySelectorAll("[data-dimension]")) button.setAttribute("aria-pressed", String(button.dataset.dimension === dimension));
    const td = cellElements.get(row[dimension].code);
  if (focus && document.activeElement !== td && !document.querySelector("dialog[open]")) td.focus({ preventScroll: true });
  td.scrollIntoView({ block: "nearest" });
  viewer.select(joint);
  renderPicker();
  updateHeatmap();
}

function jointsWith(dimension) {
  return jointRows.filter((row) => row[dimension]).map((row) => row.joint);
}

function move(delta) {
  const joints = jointsWith(active.dimension);
  const index = joints.indexOf(active.joint);
  const next = index + delta;
  if (next < 0 || next >= joints.length) return false;
  activate(joints[next], active.dimension);
  return true;
}

// Entry order, a reader's preference kept in this browser: "column" runs down the erosion column,
// then the JSN column, as on the paper form; "joint" takes erosion then JSN of the same joint.
let entryOrder = loadEntryOrder(config.user);

// The scored cells in joint-by-joint order: [joint, dimension] pairs, row by row.
function jointOrderCells() {
  return jointRows.flatMap((row) => DIMENSIONS.filter((dimension) => row[dimension]).map((dimension) => [row.joint, dimension]));
}

function stepJointOrder(delta) {
  const cells = jointOrderCells();
  const index = cells.findIndex(([joint, dimension]) => joint === active.joint && dimension === active.dimension);
  const next = cells[index + delta];
  if (!next) return false;
  activate(next[0], next[1]);
  return true;
}

function setEntryOrder(order) {
  entryOrder = storeEntryOrder(config.user, order, root.querySelector('[data-action="entry-order"]'));
}

// After the last erosion cell the reader goes on with JSN from the top, as on the paper form.
function advance() {
  if (entryOrder === "joint") return stepJointOrder(1);
  if (move(1)) return true;
  if (active.dimension === "erosion" && jointsWith("jsn").length) {
    activate(jointsWith("jsn")[0], "jsn");
    return true;
  }
  return false;
}

function retreat() {
  if (entryOrder === "joint") return stepJointOrder(-1);
  if (move(-1)) return true;
  if (active.dimension === "jsn" && jointsWith("erosion").length) {
    const joints = jointsWith("erosion");
    activate(joints[joints.length - 1], "erosion");
    return true;
  }
  return false;
}

function switchDimension(dimension) {
  const row = jointRows.find((item) => item.joint === active.joint);
  if (row && row[dimension]) return activate(active.joint, dimension);
  // This joint is not scored for that dimension: go to the nearest joint that is.
  const position = jointRows.indexOf(row);
  const candidates = jointRows.filter((item) => item[dimension]);
  if (!candidates.length) return;
  candidates.sort((a, b) => Math.abs(jointRows.indexOf(a) - position) - Math.abs(jointRows.indexOf(b) - position));
  activate(candidates[0].joint, dimension);
}

// Grade entry -------------------------------------------------------------------------------

// Digits, the half key and the held "1" of a 0-10 cell: the same on the visit form.
const entry = new GradeEntry({
  selected: () => {
    const code = activeCode();
    return code ? { sheet, code } : null;
  },
  commit: (target, level) => commitGrade(target.code, level),
  notify: (message) => notify(message),
  dimensionName: (cell) => DIMENSION_NAMES[cell.dimension],
  readOnly: () => readOnly,
});

// Enter takes the suggestion shown in the selected cell as it is, then moves on: a reader who
// checks a pre-filled table joint by joint confirms with one key per cell.
function confirmActiveCell() {
  if (readOnly) return;
  const code = activeCode();
  const view = code && sheet.view(code);
  if (view && view.kind === "suggested") sheet.setValue(code, view.value);
  advance();
}

function commitGrade(code, value) {
  sheet.setValue(code, value);
  notify("");
  if (activeCode() === code) advance();
}

function renderPicker() {
  const picker = $("[data-grade-picker]");
  const code = activeCode();
  const cell = code && sheet.cells.get(code);
  picker.replaceChildren();
  if (!cell || readOnly) return;
  fillGradePicker(picker, {
    caption: `${cell.label} · ${DIMENSION_NAMES[cell.dimension]}`,
    maxGrade: cell.maxGrade,
    current: sheet.view(code).value,
    format: (grade) => gradeText(cell, grade),
    choose: (grade) => {
      commitGrade(code, grade);
      cellElements.get(activeCode())?.focus({ preventScroll: true });
    },
  });
}

// Totals ------------------------------------------------------------------------------------

function renderTotals() {
  const totals = sheet.totals();
  $('[data-total="erosion"]').textContent = totals.erosion;
  $('[data-total="jsn"]').textContent = totals.jsn;
  $('[data-total="image"]').textContent = totals.image;
  const notes = [];
  if (config.visit_totals.length) {
    const others = config.visit_totals.reduce((sum, other) => sum + other.erosion + other.jsn, 0);
    $("[data-visit-row]").hidden = false;
    $('[data-total="visit"]').textContent = totals.image + others;
    for (const other of config.visit_totals) {
      if (other.graded < other.areas) {
        notes.push(interpolate(gettext("%(label)s of this visit: %(graded)s/%(areas)s graded."), other));
      }
    }
  }
  if (totals.unconfirmed) notes.push(interpolate(gettext("%(n)s suggestions not counted yet."), { n: totals.unconfirmed }));
  if (totals.missing) notes.push(interpolate(gettext("%(n)s cells not graded yet."), { n: totals.missing }));
  $("[data-totals-note]").textContent = notes.join(" ");
  viewer.setCompleted(sheet.completedJoints());
}

// Save state --------------------------------------------------------------------------------

function renderSaveState() {
  showSaveState(root.querySelector("[data-save-state]"), {
    state: submitted || readOnly ? "submitted" : saver.state,
    detail: saver.detail,
    unsaved: sheet.pendingItems().length,
  });
}

function notify(message) {
  $("[data-sheet-notice]").textContent = message;
}

function viewerNotice(message) {
  setNotice(root.querySelector("[data-viewer-notice]"), message);
}

// Viewer ------------------------------------------------------------------------------------

const viewer = new Viewer({
  stage: root.querySelector("[data-stage]"),
  width: config.assignment.radiograph.width,
  height: config.assignment.radiograph.height,
  displayUrl: config.urls.display_image,
  fullUrl: config.urls.full_image,
  shortLabels: config.short_labels,
  filter: document.getElementById("window-level"),
  editable: !readOnly,
});
viewer.setLandmarks(config.landmarks);
viewer.addEventListener("select", (event) => activate(event.detail.joint, active.dimension));
viewer.addEventListener("move", (event) => landmarks.add(event.detail));
viewer.addEventListener("view", () => { root.querySelector("[data-zoom-level]").textContent = `${viewer.zoomPercent()}%`; });
viewer.addEventListener("window", () => showWindow(root, viewer));
viewer.addEventListener("heatmap", (event) => {
  if (!heatmapOn) return;
  const { state } = event.detail;
  root.querySelector("[data-stage]").dataset.heatmap = state;
  viewerNotice(heatmapNotice(state));
});
viewer.addEventListener("loading", (event) => {
  const notice = loadingNotice(event.detail);
  if (notice) viewerNotice(notice);
  else updateHeatmap();
});
viewer.load().then(
  () => root.setAttribute("data-image", "painted"),
  () => viewerNotice(gettext("The image could not be loaded. Reload the page to try again.")),
);

let heatmapOn = false;
const heatmapMethod = new HeatmapMethodPicker({
  button: root.querySelector('[data-action="heatmap"]'), url: config.urls.heatmap_methods, onChange: () => updateHeatmap(),
});

function updateHeatmap() {
  root.querySelector('[data-action="heatmap"]').setAttribute("aria-pressed", String(heatmapOn));
  if (!heatmapOn) {
    viewer.setHeatmap(null);
    root.querySelector("[data-stage]").dataset.heatmap = "";
    viewerNotice("");
    return;
  }
  if (!sheet.modelVersion) {
    viewer.setHeatmap(null);
    viewerNotice(gettext("No model yet: heatmaps appear once a model is trained and active."));
    return;
  }
  const code = activeCode();
  const url = heatmapMethod.url(code && sheet.cells.get(code).suggestion?.heatmap_url);
  // Cleared first: a map that still has to load says so through the viewer's "heatmap" event.
  viewerNotice(url ? "" : gettext("No heatmap for this joint and dimension."));
  root.querySelector("[data-stage]").dataset.heatmap = url ? "shown" : "";
  viewer.setHeatmap(url || null);
}

// Moved markers are saved like grades: retried until the server has them.
const landmarks = new LandmarkQueue({ url: config.urls.landmarks, csrfToken, viewer, notify });

// Suggestions -------------------------------------------------------------------------------

// No model yet: ask again now and then (and when the reader comes back to the tab), so suggestions
// appear once the first model serves without a reload. The visit form keeps its own loader: it asks
// again only when the reader comes back to the tab, one request per radiograph.
const SUGGESTION_POLL_MS = 60_000;
let suggestionPoll = null;

async function loadSuggestions(attempt = 0) {
  if (!assisted) return;
  clearTimeout(suggestionPoll);
  try {
    const response = await fetch(config.urls.suggestions, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const payload = await response.json();
    sheet.setSuggestions(payload);
    updateHeatmap();
    renderPicker();
    if (!payload.model_version && !submitted && !readOnly) suggestionPoll = setTimeout(loadSuggestions, SUGGESTION_POLL_MS);
  } catch {
    suggestionPoll = setTimeout(() => loadSuggestions(attempt + 1), Math.min(30, 2 ** attempt) * 1000);
  }
}

window.addEventListener("focus", () => {
  if (assisted && !readOnly && !sheet.modelVersion) loadSuggestions();
});

// Conflicts ---------------------------------------------------------------------------------

const conflictDialog = document.querySelector("[data-conflict-dialog]");

const conflictEntries = () => sheet.conflicts().map((cell) => ({
  sheet, cell, name: `conflict-${cell.code}`, legend: `${cell.label}, ${DIMENSION_NAMES[cell.dimension]}`,
}));

function showConflicts() {
  const entries = conflictEntries();
  if (!entries.length) return;
  renderConflictList(conflictDialog.querySelector("[data-conflict-list]"), entries);
  if (!conflictDialog.open) conflictDialog.showModal();
}

bindConflictDialog(conflictDialog, { entries: conflictEntries, resolved: () => saver.flush() });
saver.addEventListener("conflict", showConflicts);
saver.addEventListener("state", renderSaveState);

// Suggestions as a second opinion ------------------------------------------------------------

// `A` confirms the suggestions of the cells the reader has visited; the others wait for a look.
function acceptSuggestions() {
  if (!sheet.hasSuggestions()) return notify(gettext("No suggestions for this radiograph."));
  const before = sheet.unconfirmedSuggestions();
  if (!before.length) return notify(gettext("Every suggestion is already confirmed."));
  const confirmed = sheet.acceptAll({ only: needLook ? visited : null }).length;
  const left = sheet.unconfirmedSuggestions();
  if (!left.length) return notify(interpolate(gettext("%(n)s suggestions confirmed."), { n: confirmed }));
  notify(interpolate(
    gettext("%(n)s suggestions confirmed; %(left)s not looked at yet: go to each (Enter confirms and moves on), then press A again."),
    { n: confirmed, left: left.length },
  ));
  activate(left[0].joint, left[0].dimension, { look: false });
}

const stopForUnlooked = unlookedSubmitCheck(notify);
const onlyUnlookedSuggestions = () => needLook && sheet.cells.size > 0 && sheet.allUnlookedSuggestions(visited);

// Submit ------------------------------------------------------------------------------------

async function submit() {
  if (readOnly || submitted || stopForUnlooked(onlyUnlookedSuggestions)) return;
  const undecided = sheet.undecidedCount();
  if (undecided) {
    notify(interpolate(gettext("%(n)s cells are not graded yet; grade or accept them before submitting."), { n: undecided }));
    const first = [...sheet.cells.values()].find((cell) => !sheet.decided(cell));
    if (first) activate(first.joint, first.dimension);
    return;
  }
  const button = root.querySelector('[data-action="submit"]');
  button.disabled = true;
  notify(gettext("Submitting…"));
  try {
    if (!(await saver.flush())) {
      notify(gettext("Cannot submit until every grade is saved."));
      return;
    }
    const response = await fetch(config.urls.submit, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ seconds_spent: activeSeconds }),
    });
    if (!response.ok) {
      notify(firstMessage(await response.json().catch(() => ({}))) || gettext("The server refused the submission."));
      return;
    }
    submitted = true;
    localStorage.removeItem(draftKey);
    renderSaveState();
    notify(gettext("Submitted. Opening the next radiograph…"));
    const next = await fetch(config.urls.next, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (next.status === 200) {
      const assignment = await next.json();
      window.location.assign(config.urls.workspace.replace("/0/", `/${assignment.id}/`));
    } else {
      window.location.assign(config.urls.worklist);
    }
  } catch {
    notify(gettext("Cannot reach the server; your grades are kept. Try again when the connection is back."));
  } finally {
    if (!submitted) button.disabled = false;
  }
}

// Download and print show the server's copy, so save first.
async function openSaved(event) {
  const link = event.currentTarget;
  if (!sheet.hasUnsaved()) return;
  event.preventDefault();
  if (await saver.flush()) link.click();
  else notify(gettext("Not saved yet: the file would miss your latest changes. Try again when saving works."));
}

// Controls ----------------------------------------------------------------------------------

const shortcutsDialog = document.querySelector("[data-shortcuts-dialog]");

function showShortcuts() {
  showShortcutDialog(shortcutsDialog, () => shortcutList({ assisted, needLook }));
}

const actions = {
  ...imageActions(() => viewer),
  markers: () => toggleMarkers(root.querySelector('[data-action="markers"]'), viewer),
  heatmap: () => {
    heatmapOn = !heatmapOn;
    updateHeatmap();
  },
  "accept-all": acceptSuggestions,
  "reset-cell": () => {
    const code = activeCode();
    if (code && !sheet.resetCell(code).length && !sheet.cells.get(code).suggestion) notify(gettext("No suggestion for this cell."));
  },
  "reset-all": () => {
    if (!sheet.hasSuggestions()) notify(gettext("No suggestions for this radiograph."));
    else sheet.resetAll({ only: needLook ? visited : null });
  },
  "entry-order": () => setEntryOrder(entryOrder === "joint" ? "column" : "joint"),
  undo: () => sheet.undo(),
  redo: () => sheet.redo(),
  shortcuts: showShortcuts,
  submit,
};

// A click returns the keyboard to the table so shortcuts keep working after it.
bindActionButtons(root.querySelectorAll("button[data-action]"), actions, () => cellElements.get(activeCode())?.focus({ preventScroll: true }));
for (const link of root.querySelectorAll('a[data-action="download"], a[data-action="print"]')) link.addEventListener("click", openSaved);
for (const button of root.querySelectorAll("[data-dimension]")) button.addEventListener("click", () => switchDimension(button.dataset.dimension));
bindWindowSliders(root, () => viewer, returnFocusToGrid);

function returnFocusToGrid() {
  if (document.querySelector("dialog[open]")) return;
  cellElements.get(activeCode())?.focus({ preventScroll: true });
}

bindSheetKeys({
  // A held "1" is set before any other key acts.
  beforeKey: (event, command) => entry.beforeKey(event, command),
  submit,
  undo: actions.undo,
  redo: actions.redo,
  saveNow: () => saver.flush(),
  tab: (delta) => (delta < 0 ? retreat() : advance()),
  down: () => move(1),
  up: () => move(-1),
  left: () => switchDimension("erosion"),
  right: () => switchDimension("jsn"),
  digit: (digit) => entry.digit(digit),
  half: () => entry.half(),
  enter: confirmActiveCell,
  letters: {
    ...imageKeys(actions),
    e: () => switchDimension("erosion"),
    j: () => switchDimension("jsn"),
    a: actions["accept-all"],
    r: actions["reset-cell"],
    R: actions["reset-all"],
    o: actions["entry-order"],
    "?": actions.shortcuts,
  },
});

// Active time: counted while the page is visible and the reader did something in the last minute.
const readingNow = watchActivity();

function renderTimer() {
  root.querySelector("[data-timer]").textContent = clockText(activeSeconds);
}

setInterval(() => {
  if (!readOnly && !submitted && readingNow()) {
    activeSeconds += 1;
    renderTimer();
    if (activeSeconds % 5 === 0) saveDraft();
  }
  if (saver.state === "offline") renderSaveState();
}, 1000);

// The pending save leaves with keepalive; the draft, written after it, records it as sent, so the
// next page recognises it as this reader's own save whichever request the server answers first.
window.addEventListener("pagehide", () => {
  saver.sendBeacon();
  saveDraft();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") saveDraft();
});

// Start -------------------------------------------------------------------------------------

sheet.addEventListener("change", (event) => {
  for (const code of event.detail.codes) renderCell(code);
  renderTotals();
  renderPicker();
  saveDraft();
  if (sheet.pendingItems().length && !saver.inFlight) saver.schedule();
  renderSaveState();
});

sheet.addEventListener("sent", saveDraft);

buildTable();
setEntryOrder(entryOrder);
sheet.restoreDraft(storedDraft);
renderAllCells();
renderTotals();
renderTimer();
// A reload continues where the reader was; a fresh page starts at the first cell left to grade.
const firstUndecided = [...sheet.cells.values()].find((cell) => !sheet.decided(cell));
const start = storedDraft.active && rowElements.has(storedDraft.active.joint)
  ? storedDraft.active
  : firstUndecided || sheet.cells.values().next().value;
if (start) activate(start.joint, start.dimension, { look: false });
root.querySelector("[data-zoom-level]").textContent = `${viewer.zoomPercent()}%`;
if (readOnly) root.classList.add("read-only");
if (sheet.conflicts().length) {
  saver.state = "conflict";
  showConflicts();
} else if (sheet.pendingItems().length) {
  saver.flush();
}
renderSaveState();
(assisted ? loadSuggestions() : Promise.resolve()).then(() => { root.dataset.state = "ready"; });
