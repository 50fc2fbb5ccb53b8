// The reader workspace: wires the score sheet, autosave, the viewer and the keyboard together.
import { gettext, interpolate } from "./i18n.js";
import { DIMENSIONS, ScoreSheet } from "./scoresheet.js";
import { Saver, firstMessage } from "./saver.js";
import { shortcutList } from "./shortcuts.js";
import { Viewer } from "./viewer.js";
import { HALF_KEY_WINDOW_MS, gradeText, levelForDigit, levelWithHalf } from "./grades.js";
import { HeatmapMethodPicker } from "./heatmap_method.js";

const config = JSON.parse(document.getElementById("workspace-config").textContent);
const root = document.getElementById("workspace");
const $ = (selector) => root.querySelector(selector);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
const assisted = config.project.suggestions === "assisted";
// Accept-all confirms only what the reader has looked at (a project setting, on by default).
const needLook = assisted && config.project.suggestions_need_look !== false;
const readOnly = config.assignment.status === "submitted";
const DIMENSION_NAMES = { erosion: gettext("Erosion"), jsn: gettext("JSN"), ...(config.project.dimension_labels || {}) };

// Draft in this browser: survives a reload, a crash or a lost connection -----------------------

const draftKey = `ra-workspace:${config.user}:${config.assignment.id}`;
const storedDraft = (() => {
  try {
    return JSON.parse(localStorage.getItem(draftKey)) || {};
  } catch {
    return {};
  }
})();
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
  td.classList.toggle("empty", view.kind === "empty");
  td.classList.toggle("suggested", view.kind === "suggested");
  td.classList.toggle("confirmed", view.kind === "confirmed");
  td.classList.toggle("from-model", view.kind === "confirmed" && view.source === "accepted");
  td.classList.toggle("pending", view.pending);
  td.classList.toggle("conflict", Boolean(view.conflict));
  td.classList.toggle("visited", visited.has(code));
  let state;
  if (view.kind === "empty") state = gettext("not graded");
  else if (view.kind === "suggested") state = interpolate(gettext("%(value)s, suggested, not confirmed"), { value: gradeText(cell, view.value) });
  else state = view.pending ? interpolate(gettext("%(value)s, not saved yet"), { value: gradeText(cell, view.value) }) : gradeText(cell, view.value);
  td.setAttribute("aria-label", interpolate(gettext("%(joint)s, %(dimension)s: %(state)s"), { joint: cell.label, dimension: DIMENSION_NAMES[cell.dimension], state }));
  if (cell.suggestion) {
    const percents = cell.suggestion.distribution.map((p, grade) => `${gradeText(cell, grade)}: ${Math.round(p * 100)}%`).join("  ");
    td.title = interpolate(gettext("Suggestion %(label)s (%(percents)s)"), { label: gradeText(cell, cell.suggestion.label), percents });
  } else td.removeAttribute("title");
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
const orderKey = `ra-workspace-order:${config.user}`;
let entryOrder = (() => {
  try {
    return localStorage.getItem(orderKey) === "joint" ? "joint" : "column";
  } catch {
    return "column";
  }
})();

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
  entryOrder = order === "joint" ? "joint" : "column";
  try {
    localStorage.setItem(orderKey, entryOrder);
  } catch {
    // Not kept across pages; still used on this one.
  }
  const button = root.querySelector('[data-action="entry-order"]');
  if (button) {
    button.setAttribute("aria-pressed", String(entryOrder === "joint"));
    button.textContent = entryOrder === "joint" ? gettext("Order: joints") : gettext("Order: columns");
  }
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

let heldDigit = null;

// A held "1" is set as soon as anything but a "0" follows, so a reader typing fast never loses
// the next key to the wait nor has it land in the wrong cell: a digit or Enter sets it and moves
// on as a grade does; any other key (a move, a letter) sets it and then acts from that cell.
function flushHeldDigit(moveOn = true) {
  if (!heldDigit) return false;
  clearTimeout(heldDigit.timer);
  const { code } = heldDigit;
  heldDigit = null;
  if (moveOn) commitGrade(code, 1);
  else {
    sheet.setValue(code, 1);
    notify("");
  }
  return true;
}

function enterDigit(digit) {
  if (readOnly) return;
  if (heldDigit) {
    if (heldDigit.code === activeCode() && digit === 0) {
      const { code } = heldDigit;
      clearTimeout(heldDigit.timer);
      heldDigit = null;
      return commitGrade(code, 10);
    }
    flushHeldDigit();
  }
  const code = activeCode();
  const cell = code && sheet.cells.get(code);
  if (!cell) return;
  // Foot erosion goes to 10: "1" then "0" gives 10; a "1" alone is set after a moment.
  if (cell.maxGrade >= 10 && digit === 1) {
    heldDigit = { code, timer: setTimeout(() => flushHeldDigit(), 1200) };
    notify(gettext("1 — type 0 for 10"));
    return;
  }
  const level = levelForDigit(cell, digit);
  if (level === null) {
    notify(interpolate(gettext("%(dimension)s is graded 0–%(max)s."), { dimension: DIMENSION_NAMES[cell.dimension], max: gradeText(cell, cell.maxGrade) }));
    return;
  }
  lastDigit = { code, level, at: Date.now() };
  commitGrade(code, level);
}

// "." adds a half to the grade just typed (the cursor has moved on), else to the selected cell's.
let lastDigit = null;
function enterHalf() {
  if (readOnly) return;
  const recent = lastDigit && Date.now() - lastDigit.at < HALF_KEY_WINDOW_MS ? lastDigit : null;
  lastDigit = null;
  const code = recent ? recent.code : activeCode();
  const cell = code && sheet.cells.get(code);
  if (!cell) return;
  const level = recent ? recent.level : sheet.view(code).value;
  const half = levelWithHalf(cell, level);
  if (half === null) {
    notify(cell.step === 0.5
      ? interpolate(gettext("%(dimension)s is graded 0–%(max)s in half steps; type the whole grade, then a point."), { dimension: DIMENSION_NAMES[cell.dimension], max: gradeText(cell, cell.maxGrade) })
      : interpolate(gettext("%(dimension)s has no half grades."), { dimension: DIMENSION_NAMES[cell.dimension] }));
    return;
  }
  sheet.setValue(code, half);
  notify("");
}

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
  const caption = document.createElement("span");
  caption.className = "picker-caption";
  caption.textContent = `${cell.label} · ${DIMENSION_NAMES[cell.dimension]}`;
  picker.append(caption);
  for (let grade = 0; grade <= cell.maxGrade; grade += 1) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = gradeText(cell, grade);
    button.setAttribute("aria-label", interpolate(gettext("Grade %(grade)s"), { grade: gradeText(cell, grade) }));
    if (sheet.view(code).value === grade) button.classList.add("current");
    button.addEventListener("click", () => {
      commitGrade(code, grade);
      cellElements.get(activeCode())?.focus({ preventScroll: true });
    });
    picker.append(button);
  }
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
        notes.push(interpolate(gettext("Other image of this visit: %(graded)s/%(areas)s graded."), other));
      }
    }
  }
  if (totals.unconfirmed) notes.push(interpolate(gettext("%(n)s suggestions not counted yet."), { n: totals.unconfirmed }));
  if (totals.missing) notes.push(interpolate(gettext("%(n)s cells not graded yet."), { n: totals.missing }));
  $("[data-totals-note]").textContent = notes.join(" ");
  const completed = new Set(
    jointRows.filter((row) => DIMENSIONS.every((d) => !row[d] || sheet.decided(sheet.cells.get(row[d].code)))).map((row) => row.joint),
  );
  viewer.setCompleted(completed);
}

// Save state --------------------------------------------------------------------------------

function renderSaveState() {
  const element = root.querySelector("[data-save-state]");
  const state = submitted || readOnly ? "submitted" : saver.state;
  const unsaved = sheet.pendingItems().length;
  let text;
  switch (state) {
    case "saved": text = gettext("Saved"); break;
    case "dirty": text = gettext("Unsaved changes"); break;
    case "saving": text = gettext("Saving…"); break;
    case "conflict": text = gettext("Conflict: choose which values to keep"); break;
    case "error": text = interpolate(gettext("Not saved: %(message)s"), { message: saver.detail.message || gettext("refused by the server") }); break;
    case "submitted": text = gettext("Submitted"); break;
    default: {
      const seconds = Math.max(0, Math.ceil(((saver.detail.retryAt || Date.now()) - Date.now()) / 1000));
      text = saver.detail.reason === "signed-out"
        ? interpolate(gettext("Signed out: log in again in another tab. %(n)s changes kept in this browser."), { n: unsaved })
        : interpolate(gettext("Offline: %(n)s changes kept in this browser, retrying in %(s)s s"), { n: unsaved, s: seconds });
    }
  }
  element.textContent = text;
  element.dataset.state = state;
}

function notify(message) {
  $("[data-sheet-notice]").textContent = message;
}

function viewerNotice(message) {
  const element = root.querySelector("[data-viewer-notice]");
  element.textContent = message;
  element.hidden = !message;
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
viewer.addEventListener("move", (event) => queueLandmark(event.detail));
viewer.addEventListener("view", () => { root.querySelector("[data-zoom-level]").textContent = `${viewer.zoomPercent()}%`; });
viewer.addEventListener("window", () => {
  root.querySelector('[data-control="brightness"]').value = String(Math.round(viewer.brightness));
  root.querySelector('[data-control="contrast"]').value = String(Math.round(viewer.contrast));
  root.querySelector('[data-action="invert"]').setAttribute("aria-pressed", String(viewer.invert));
});
viewer.addEventListener("heatmap", (event) => {
  if (!heatmapOn) return;
  const { state } = event.detail;
  root.querySelector("[data-stage]").dataset.heatmap = state;
  if (state === "loading") viewerNotice(gettext("Loading heatmap…"));
  else if (state === "failed") viewerNotice(gettext("The heatmap could not be loaded."));
  else viewerNotice("");
});
viewer.addEventListener("loading", (event) => {
  if (event.detail.full) viewerNotice(gettext("Loading full resolution…"));
  else if (event.detail.failed) viewerNotice(gettext("Full resolution could not be loaded; zoom again to retry."));
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
const pendingLandmarks = new Map();
let landmarkRetry = null;

function queueLandmark({ joint, x, y }) {
  pendingLandmarks.set(joint, { joint, x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 });
  flushLandmarks();
}

async function flushLandmarks(attempt = 0) {
  clearTimeout(landmarkRetry);
  if (!pendingLandmarks.size) return;
  const sent = [...pendingLandmarks.values()];
  try {
    const response = await fetch(config.urls.landmarks, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ landmarks: sent }),
    });
    if (response.status === 400) {
      notify(firstMessage(await response.json()));
      pendingLandmarks.clear();
      return;
    }
    if (!response.ok) throw new Error(String(response.status));
    for (const item of sent) if (pendingLandmarks.get(item.joint) === item) pendingLandmarks.delete(item.joint);
    viewer.setLandmarks((await response.json()).landmarks);
    notify(gettext("Marker saved as your landmark."));
  } catch {
    notify(gettext("Marker position not saved yet; retrying."));
    landmarkRetry = setTimeout(() => flushLandmarks(attempt + 1), Math.min(30, 2 ** attempt) * 1000);
  }
}

// Suggestions -------------------------------------------------------------------------------

// No model yet: ask again now and then (and when the reader comes back to the tab), so suggestions
// appear once the first model serves without a reload.
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

function showConflicts() {
  const cells = sheet.conflicts();
  if (!cells.length) return;
  const list = conflictDialog.querySelector("[data-conflict-list]");
  list.replaceChildren();
  for (const cell of cells) {
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = `${cell.label}, ${DIMENSION_NAMES[cell.dimension]}`;
    fieldset.append(legend);
    const options = [
      ["mine", interpolate(gettext("Keep mine: %(value)s"), { value: cell.conflict.mine })],
      ["theirs", interpolate(gettext("Use the saved value: %(value)s"), { value: cell.conflict.theirs === null ? gettext("none") : cell.conflict.theirs })],
    ];
    for (const [choice, text] of options) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = `conflict-${cell.code}`;
      input.value = choice;
      input.checked = choice === "mine";
      label.append(input, ` ${text}`);
      fieldset.append(label);
    }
    list.append(fieldset);
  }
  if (!conflictDialog.open) conflictDialog.showModal();
}

conflictDialog.querySelector('[data-action="resolve-conflicts"]').addEventListener("click", () => {
  for (const cell of sheet.conflicts()) {
    const choice = conflictDialog.querySelector(`input[name="conflict-${cell.code}"]:checked`)?.value || "mine";
    sheet.resolveConflict(cell.code, choice);
  }
  conflictDialog.close();
  saver.flush();
});

// Closing with Escape would leave the conflict unresolved and the cells unsaved: the reader chooses.
conflictDialog.addEventListener("cancel", (event) => event.preventDefault());
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

// A read made only of suggestions the reader never looked at is asked about once before it goes.
let unlookedSubmitAsked = false;

function onlyUnlookedSuggestions() {
  const cells = [...sheet.cells.values()];
  return needLook && cells.length > 0 && cells.every((cell) => {
    const decided = sheet.decided(cell);
    return decided && cell.suggestion && decided.value === cell.suggestion.label && !visited.has(cell.code);
  });
}

// Submit ------------------------------------------------------------------------------------

async function submit() {
  if (readOnly || submitted) return;
  if (!unlookedSubmitAsked && onlyUnlookedSuggestions()) {
    unlookedSubmitAsked = true;
    notify(gettext("Every grade is a model suggestion you have not looked at. Submit again to send it as it is, or check the joints first."));
    return;
  }
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
  const table = shortcutsDialog.querySelector("[data-shortcut-table]");
  if (!table.rows.length) {
    for (const [keys, description] of shortcutList({ assisted, needLook })) {
      const tr = table.insertRow();
      const keyCell = tr.insertCell();
      keyCell.innerHTML = keys.map((key) => `<kbd>${key}</kbd>`).join(" ");
      tr.insertCell().textContent = description;
    }
  }
  shortcutsDialog.showModal();
}

const actions = {
  "zoom-in": () => viewer.zoomStep(1),
  "zoom-out": () => viewer.zoomStep(-1),
  fit: () => viewer.fit(),
  "actual-size": () => viewer.actualSize(),
  invert: () => viewer.setWindow({ invert: !viewer.invert }),
  "reset-image": () => viewer.resetImage(),
  markers: () => {
    viewer.showMarkers = !viewer.showMarkers;
    root.querySelector('[data-action="markers"]').setAttribute("aria-pressed", String(viewer.showMarkers));
    viewer.requestDraw();
  },
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

for (const button of document.querySelectorAll("#workspace button[data-action]")) {
  const handler = actions[button.dataset.action];
  if (!handler) continue;
  button.addEventListener("click", () => {
    handler();
    // Return the keyboard to the table so shortcuts keep working after a click.
    if (!["submit", "shortcuts"].includes(button.dataset.action)) cellElements.get(activeCode())?.focus({ preventScroll: true });
  });
}
for (const link of root.querySelectorAll('a[data-action="download"], a[data-action="print"]')) link.addEventListener("click", openSaved);
for (const button of root.querySelectorAll("[data-dimension]")) button.addEventListener("click", () => switchDimension(button.dataset.dimension));
root.querySelector('[data-control="brightness"]').addEventListener("input", (event) => viewer.setWindow({ brightness: Number(event.target.value) }));
root.querySelector('[data-control="contrast"]').addEventListener("input", (event) => viewer.setWindow({ contrast: Number(event.target.value) }));
// A slider keeps the keyboard only while it is dragged: once set, digits and arrows go back to
// the table (a reader who wants to nudge it by keys tabs to it again).
for (const slider of root.querySelectorAll("input[type=range][data-control]")) {
  slider.addEventListener("change", returnFocusToGrid);
  slider.addEventListener("pointerup", returnFocusToGrid);
}

function returnFocusToGrid() {
  if (document.querySelector("dialog[open]")) return;
  cellElements.get(activeCode())?.focus({ preventScroll: true });
}

const letterKeys = {
  e: () => switchDimension("erosion"),
  j: () => switchDimension("jsn"),
  a: actions["accept-all"],
  r: actions["reset-cell"],
  R: actions["reset-all"],
  o: actions["entry-order"],
  f: actions.fit,
  n: actions["actual-size"],
  i: actions.invert,
  w: actions["reset-image"],
  m: actions.markers,
  h: actions.heatmap,
  "+": actions["zoom-in"],
  "=": actions["zoom-in"],
  "-": actions["zoom-out"],
  "?": actions.shortcuts,
};

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || document.querySelector("dialog[open]")) return;
  const target = event.target;
  const key = event.key;
  const command = event.ctrlKey || event.metaKey;
  if (heldDigit && !/^[0-9]$/.test(key) && !["Shift", "Control", "Alt", "Meta"].includes(key)) {
    // Ctrl+Enter submits what was typed, the held "1" included.
    if (key === "Enter" && !command) return prevent(event, () => flushHeldDigit());
    flushHeldDigit(false);
  }
  if (command && key === "Enter") return prevent(event, submit);
  if (command && !event.altKey) {
    const lower = key.toLowerCase();
    if (lower === "z") return prevent(event, event.shiftKey ? actions.redo : actions.undo);
    if (lower === "y") return prevent(event, actions.redo);
    if (lower === "s") return prevent(event, () => saver.flush());
    return;
  }
  if (event.altKey || target.closest?.("input, select, textarea")) return;
  const onControl = target.closest?.("button, a");
  if (onControl && (key === "Enter" || key === " ")) return;
  if (key === "Tab") {
    // Inside the table Tab walks the cells; from the last (or first) one it leaves as usual.
    if (!target.closest?.("[data-scores]") && target !== document.body) return;
    if (event.shiftKey ? retreat() : advance()) event.preventDefault();
    return;
  }
  if (key === "ArrowDown") return prevent(event, () => move(1));
  if (key === "ArrowUp") return prevent(event, () => move(-1));
  if (key === "ArrowLeft") return prevent(event, () => switchDimension("erosion"));
  if (key === "ArrowRight") return prevent(event, () => switchDimension("jsn"));
  if (/^[0-9]$/.test(key)) return prevent(event, () => enterDigit(Number(key)));
  if (key === "." || key === ",") return prevent(event, enterHalf);
  if (key === "Enter") return prevent(event, confirmActiveCell);
  const letter = key === "R" && event.shiftKey ? "R" : key.length === 1 ? key.toLowerCase() : key;
  if (letterKeys[letter]) prevent(event, letterKeys[letter]);
});

function prevent(event, handler) {
  event.preventDefault();
  handler();
}

// Active time: counted while the page is visible and the reader did something in the last minute.
let lastActivity = Date.now();
for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  window.addEventListener(type, () => { lastActivity = Date.now(); }, { capture: true, passive: true });
}

function renderTimer() {
  const minutes = Math.floor(activeSeconds / 60);
  root.querySelector("[data-timer]").textContent = `${minutes}:${String(activeSeconds % 60).padStart(2, "0")}`;
}

setInterval(() => {
  if (!readOnly && !submitted && document.visibilityState === "visible" && Date.now() - lastActivity < 60_000) {
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
