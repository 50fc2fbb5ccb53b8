// The visit form: every radiograph of one patient visit scored on one table, as on the paper form
// (joints as rows; Right/Left x Erosion/JSN as columns; one section per body part). Each radiograph
// keeps its own ScoreSheet, Saver and localStorage draft, exactly as on the single-image page (the
// draft keys are the same, so either page picks up the other's unsaved work); the viewer shows the
// radiograph of the selected cell's side. Submitting sends the last unsaved grades of every
// radiograph and submits them all in one request, which the server applies whole or not at all.
import { gettext, interpolate } from "./i18n.js";
import { DIMENSIONS, ScoreSheet } from "./scoresheet.js";
import { Saver, firstMessage } from "./saver.js";
import { shortcutList, showShortcutDialog } from "./shortcuts.js";
import { Viewer } from "./viewer.js";
import { draftKey as draftKeyOf, loadEntryOrder, readStored, storeEntryOrder } from "./drafts.js";
import { showSaveState } from "./save_state.js";
import { LandmarkQueue } from "./landmarks.js";
import { bindConflictDialog, renderConflictList } from "./conflicts.js";
import { bindSheetKeys, imageKeys } from "./keys.js";
import { bindActionButtons, bindWindowSliders, heatmapNotice, imageActions, loadingNotice, setNotice, showWindow, toggleMarkers } from "./image_tools.js";
import { clockText, watchActivity } from "./activity.js";
import { cellState, fillGradePicker, paintCell, suggestionTitle } from "./cells.js";
import { gradeText } from "./grades.js";
import { GradeEntry } from "./grade_entry.js";
import { csrfToken, pageConfig, suggestionMode, unlookedSubmitCheck } from "./reader_page.js";

const config = pageConfig("visit-config");
const root = document.getElementById("visit");
const $ = (selector) => root.querySelector(selector);
const { assisted, needLook } = suggestionMode(config.project);
// The columns: the sides of a visit, or (config.columns) the films of a patient's series, where a
// read's `column` names its film and the "other side" key flips to the next film.
const SIDES = config.columns ? config.columns.map((column) => column.key) : ["R", "L"];
const COLUMNS = SIDES.flatMap((side) => DIMENSIONS.map((dimension) => ({ side, dimension })));
const DIMENSION_NAMES = { erosion: gettext("Erosion"), jsn: gettext("JSN"), ...(config.project.dimension_labels || {}) };
// A scheme that names its total (Genant, Larsen) says so in the totals, as the single-image page does.
const TOTAL_NAME = config.project.dimension_labels?.total || null;
const SIDE_NAMES = config.columns
  ? Object.fromEntries(config.columns.map((column) => [column.key, column.label]))
  : { R: gettext("Right"), L: gettext("Left") };
const columnOf = (read) => read.column || read.laterality;
// Paired reading shows every film at once, their viewers kept in step.
const paired = Boolean(config.columns);
const PART_NAMES = { hand: gettext("hand"), foot: gettext("foot") };

const visitKey = `ra-visit:${config.user}:${config.visit.id}`;
const visitDraft = readStored(visitKey);
let activeSeconds = Number.isInteger(visitDraft.seconds) ? visitDraft.seconds : 0;
let submitted = false;

// One read per radiograph of the visit -------------------------------------------------------

const reads = config.reads.map((read) => {
  const readOnly = read.assignment.status === "submitted";
  const draftKey = draftKeyOf(config.user, read.assignment.id);
  const stored = readStored(draftKey);
  const sheet = new ScoreSheet({ rows: read.rows, grades: read.grades, readOnly });
  return {
    ...read,
    id: read.assignment.id,
    name: read.column ? SIDE_NAMES[read.column] : `${SIDE_NAMES[read.laterality]} ${PART_NAMES[read.body_part] || read.body_part}`,
    readOnly,
    draftKey,
    stored,
    sheet,
    saver: new Saver({ url: read.urls.grades, csrfToken, sheet }),
    // Cells the cursor has been on in this read: the ones the reader has looked at.
    visited: new Set(Array.isArray(stored.visited) ? stored.visited : []),
    viewer: null,
    landmarkQueue: null,
  };
});
const readOnly = reads.every((read) => read.readOnly);
const openReads = reads.filter((read) => !read.readOnly);
const readAt = (bodyPart, side) => reads.find((read) => read.body_part === bodyPart && columnOf(read) === side) || null;

function saveDraft(read) {
  if (read.readOnly || submitted) return;
  try {
    const { locals, known } = read.sheet.toDraft();
    const here = active && active.read === read ? { joint: active.joint, dimension: active.dimension } : read.stored.active;
    localStorage.setItem(read.draftKey, JSON.stringify({
      locals, known, visited: [...read.visited], seconds: read.stored.seconds || 0, active: here, savedAt: Date.now(),
    }));
    localStorage.setItem(visitKey, JSON.stringify({ seconds: activeSeconds, active: active ? { read: active.read.id, code: active.code } : null }));
  } catch {
    // Storage full or disabled: the server copy is still saved as usual.
  }
}

// Table ---------------------------------------------------------------------------------------

const slots = new Map(); // `${read id}:${area code}` -> the cell of one radiograph in the table
const gridRows = []; // table rows with joints: {section, joint, cols: [slot | null] in COLUMNS order}
let active = null;

function buildTable() {
  const body = $("[data-score-rows]");
  const headingRow = (className, label) => {
    const tr = document.createElement("tr");
    tr.className = className;
    const th = document.createElement("th");
    th.colSpan = 1 + COLUMNS.length;
    th.scope = "rowgroup";
    th.textContent = label;
    tr.append(th);
    body.append(tr);
  };
  for (const section of config.sections) {
    if (config.sections.length > 1) headingRow("section", section.label);
    for (const row of section.rows) {
      if (row.group_heading) {
        headingRow("group", row.label);
        continue;
      }
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = row.label;
      th.title = row.label;
      tr.append(th);
      const gridRow = { section, joint: row.joint, label: row.label, cols: [], tr };
      for (const { side, dimension } of COLUMNS) {
        const td = document.createElement("td");
        td.setAttribute("role", "gridcell");
        if (dimension === "jsn") td.classList.add("side-end");
        const read = readAt(section.body_part, side);
        const area = row[dimension];
        if (!area || !read || !read.sheet.cells.has(area.code)) {
          // "X": the scheme does not score it; a dot: the visit has no radiograph of that side.
          td.className += area ? " na no-image" : " na";
          td.textContent = area ? "·" : "X";
          td.setAttribute("aria-disabled", "true");
          const why = area ? gettext("no radiograph") : gettext("not scored");
          td.setAttribute("aria-label", `${SIDE_NAMES[side]} ${PART_NAMES[section.body_part] || section.body_part}, ${row.label}, ${DIMENSION_NAMES[dimension]}: ${why}`);
          gridRow.cols.push(null);
        } else {
          const slot = { read, code: area.code, joint: row.joint, dimension, side, td, gridRow };
          td.dataset.code = area.code;
          td.dataset.read = String(read.id);
          td.tabIndex = -1;
          td.addEventListener("click", () => activate(slot));
          slots.set(`${read.id}:${area.code}`, slot);
          gridRow.cols.push(slot);
        }
        tr.append(td);
      }
      gridRows.push(gridRow);
      body.append(tr);
    }
  }
  for (const side of SIDES) {
    if (!reads.some((read) => columnOf(read) === side)) $(`[data-side-head="${side}"]`).classList.add("no-image");
  }
  for (const { side, dimension } of COLUMNS) {
    if (config.project.dimension_labels?.[dimension]) $(`[data-column-head="${side}:${dimension}"]`).textContent = DIMENSION_NAMES[dimension];
  }
  // Each column's scale as grades, as the single-image page heads its columns ("0–3.5" on Genant
  // erosion); none where the body parts' scales differ (hands 0–5, feet 0–10).
  for (const dimension of DIMENSIONS) {
    const ranges = config.sections.map((section) => {
      const scored = section.rows.filter((row) => row[dimension]);
      return scored.length ? `0–${Math.max(...scored.map((row) => row[dimension].max_grade * (row[dimension].step || 1)))}` : null;
    });
    const distinct = [...new Set(ranges.filter(Boolean))];
    if (distinct.length !== 1) continue;
    const text = distinct[0];
    // In the tooltip: the heads are one narrow line, a range beside the name would wrap them.
    for (const side of SIDES) {
      const head = $(`[data-column-head="${side}:${dimension}"]`);
      head.title = `${head.textContent.trim()} ${text}`;
    }
  }
}

function renderCell(slot) {
  const { read, code, td } = slot;
  const cell = read.sheet.cells.get(code);
  const view = read.sheet.view(code);
  // Grades as the single-image page writes them: a half-step scale's level 5 is 2.5.
  const format = (level) => gradeText(cell, level);
  td.textContent = format(view.value);
  paintCell(td, view, read.visited.has(code));
  const state = cellState(view, format(view.value));
  td.setAttribute("aria-label", `${read.name}, ${interpolate(gettext("%(joint)s, %(dimension)s: %(state)s"), { joint: cell.label, dimension: DIMENSION_NAMES[cell.dimension], state })}`);
  // Order-known paired reading, if the project offers it: the previous film's consensus, small.
  const previous = read.previous_consensus ? read.previous_consensus[code] : undefined;
  if (previous !== undefined) {
    const hint = document.createElement("span");
    hint.className = "previous-consensus";
    hint.textContent = format(previous);
    hint.title = interpolate(gettext("previous consensus %(value)s"), { value: format(previous) });
    td.append(hint);
    td.setAttribute("aria-label", `${td.getAttribute("aria-label")}; ${interpolate(gettext("previous consensus %(value)s"), { value: format(previous) })}`);
  }
  if (cell.suggestion) td.title = suggestionTitle(cell.suggestion, format);
  else td.removeAttribute("title");
}

const slotOf = (read, code) => slots.get(`${read.id}:${code}`);

// Navigation ----------------------------------------------------------------------------------

// Entry order, the reader's preference shared with the single-image page: "column" runs down each
// column of a side (erosion, then JSN), "joint" takes erosion then JSN of each joint. Either way one
// side of a body part is finished before the other, so the image changes only between sides.
let entryOrder = loadEntryOrder(config.user);

function orderedSlots() {
  const ordered = [];
  for (const section of config.sections) {
    const rows = gridRows.filter((row) => row.section === section);
    for (const side of SIDES) {
      const column = (dimension) => COLUMNS.findIndex((item) => item.side === side && item.dimension === dimension);
      if (entryOrder === "joint") {
        for (const row of rows) for (const dimension of DIMENSIONS) if (row.cols[column(dimension)]) ordered.push(row.cols[column(dimension)]);
      } else {
        for (const dimension of DIMENSIONS) for (const row of rows) if (row.cols[column(dimension)]) ordered.push(row.cols[column(dimension)]);
      }
    }
  }
  return ordered;
}

function setEntryOrder(order) {
  entryOrder = storeEntryOrder(config.user, order, $('[data-action="entry-order"]'));
}

function step(delta) {
  const ordered = orderedSlots();
  const next = ordered[ordered.indexOf(active) + delta];
  if (!next) return false;
  activate(next);
  return true;
}

// Up and down stay in the column; left and right cross the columns of a row, and so the sides.
function moveVertical(delta) {
  const column = COLUMNS.findIndex((item) => item.side === active.side && item.dimension === active.dimension);
  for (let index = gridRows.indexOf(active.gridRow) + delta; index >= 0 && index < gridRows.length; index += delta) {
    const slot = gridRows[index].cols[column];
    if (slot) return activate(slot);
  }
}

function moveHorizontal(delta) {
  const cols = active.gridRow.cols;
  for (let index = cols.indexOf(active) + delta; index >= 0 && index < cols.length; index += delta) {
    if (cols[index]) return activate(cols[index]);
  }
}

function switchDimension(dimension) {
  const slot = active.gridRow.cols[COLUMNS.findIndex((item) => item.side === active.side && item.dimension === dimension)];
  if (slot) activate(slot);
}

function switchSide() {
  const other = SIDES[(SIDES.indexOf(active.side) + 1) % SIDES.length];
  const cols = active.gridRow.cols;
  const same = cols[COLUMNS.findIndex((item) => item.side === other && item.dimension === active.dimension)];
  const any = same || cols.find((slot) => slot && slot.side === other);
  if (any) return activate(any);
  // This joint has no cell on the other side: go to that side's radiograph of this body part.
  const read = readAt(active.gridRow.section.body_part, other);
  const first = read && orderedSlots().find((slot) => slot.read === read);
  if (first) activate(first);
  else notify(gettext("This visit has no radiograph of the other side."));
}

// `look`: the reader moved here (a key, a click); the page's own jumps (opening, after A) are not a look.
function activate(slot, { focus = true, look = true } = {}) {
  if (!slot) return;
  const previous = active;
  active = slot;
  if (look && !slot.read.visited.has(slot.code)) {
    slot.read.visited.add(slot.code);
    slot.td.classList.add("visited");
  }
  if (previous && previous !== slot) {
    previous.td.classList.remove("active");
    previous.td.tabIndex = -1;
    previous.td.setAttribute("aria-selected", "false");
    previous.gridRow.tr.classList.remove("active");
  }
  slot.td.classList.add("active");
  slot.td.tabIndex = 0;
  slot.td.setAttribute("aria-selected", "true");
  slot.gridRow.tr.classList.add("active");
  for (const [key, head] of Object.entries(columnHeads)) head.classList.toggle("active", key === `${slot.side}:${slot.dimension}`);
  if (focus && document.activeElement !== slot.td && !document.querySelector("dialog[open]")) slot.td.focus({ preventScroll: true });
  slot.td.scrollIntoView({ block: "nearest" });
  showRead(slot.read);
  if (paired) for (const read of reads) if (read !== slot.read) read.viewer.select(slot.joint);
  slot.read.viewer.select(slot.joint);
  renderPicker();
  updateHeatmap();
}

const columnHeads = Object.fromEntries(COLUMNS.map(({ side, dimension }) => [`${side}:${dimension}`, $(`[data-column-head="${side}:${dimension}"]`)]));

// Grade entry ---------------------------------------------------------------------------------

// The single-image page's entry (shared): a digit, then "." for the half; "1" "0" for a 10, a
// "1" alone set by the next key or, here, after 700 ms without one.
const entry = new GradeEntry({
  selected: () => (active ? { sheet: active.read.sheet, code: active.code, slot: active } : null),
  commit: (target, level) => commitGrade(target.slot, level),
  notify: (message) => notify(message),
  dimensionName: (cell) => DIMENSION_NAMES[cell.dimension],
  readOnly: () => !active || active.read.readOnly,
  holdMs: 700,
});

function commitGrade(slot, value) {
  slot.read.sheet.setValue(slot.code, value);
  notify("");
  if (active === slot) step(1);
}

// Enter takes the suggestion shown in the selected cell as it is, then moves on.
function confirmActiveCell() {
  if (!active || active.read.readOnly) return;
  const view = active.read.sheet.view(active.code);
  if (view.kind === "suggested") active.read.sheet.setValue(active.code, view.value);
  step(1);
}

function renderPicker() {
  const picker = $("[data-grade-picker]");
  picker.replaceChildren();
  if (!active || active.read.readOnly) return;
  const slot = active;
  const cell = slot.read.sheet.cells.get(slot.code);
  fillGradePicker(picker, {
    caption: `${slot.read.name} · ${cell.label} · ${DIMENSION_NAMES[cell.dimension]}`,
    maxGrade: cell.maxGrade,
    current: slot.read.sheet.view(slot.code).value,
    format: (grade) => gradeText(cell, grade),
    choose: (grade) => {
      commitGrade(slot, grade);
      returnFocusToGrid();
    },
  });
}

// Totals: per column, per radiograph (SvdH of one hand or foot) and for the whole visit -------

function renderTotals() {
  const foot = $("[data-score-totals]");
  foot.replaceChildren();
  const cell = (tag, text, span = 1, data = null) => {
    const element = document.createElement(tag);
    element.textContent = text;
    if (span > 1) element.colSpan = span;
    if (data) element.dataset.total = data;
    if (tag === "th") element.scope = "row";
    return element;
  };
  let visitTotal = 0;
  let unconfirmed = 0;
  let missing = 0;
  for (const section of config.sections) {
    const part = PART_NAMES[section.body_part] || section.body_part;
    const columns = document.createElement("tr");
    columns.append(cell("th", interpolate(gettext("Total, %(part)s"), { part })));
    const images = document.createElement("tr");
    const imagesLabel = TOTAL_NAME
      ? (paired ? interpolate(gettext("%(total)s, each film"), { total: TOTAL_NAME }) : interpolate(gettext("%(total)s, each %(part)s"), { total: TOTAL_NAME, part }))
      : (paired ? gettext("SvdH, each film") : interpolate(gettext("SvdH, each %(part)s"), { part }));
    images.append(cell("th", imagesLabel));
    for (const side of SIDES) {
      const read = readAt(section.body_part, side);
      const totals = read ? read.sheet.totals() : null;
      for (const dimension of DIMENSIONS) columns.append(cell("td", totals ? String(totals[dimension]) : "·", 1, `${section.body_part}:${side}:${dimension}`));
      images.append(cell("td", totals ? String(totals.image) : "·", 2, `${section.body_part}:${side}`));
      if (totals) {
        visitTotal += totals.image;
        unconfirmed += totals.unconfirmed;
        missing += totals.missing;
      }
    }
    foot.append(columns, images);
  }
  const grand = document.createElement("tr");
  grand.className = "grand";
  if (!paired) {
    grand.append(cell("th", TOTAL_NAME ? interpolate(gettext("%(total)s, visit"), { total: TOTAL_NAME }) : gettext("SvdH total, visit")), cell("td", String(visitTotal), COLUMNS.length, "visit"));
    foot.append(grand);
  } else if (!config.series.order_hidden && reads.length > 1) {
    // Summing films of different visits means nothing; in known order the change does.
    const first = reads[0].sheet.totals();
    const last = reads[reads.length - 1].sheet.totals();
    // Only decided grades count: an unconfirmed suggestion is the model's, not the reader's.
    const undecided = first.missing + first.unconfirmed + last.missing + last.unconfirmed;
    const change = undecided ? "·" : String(last.image - first.image);
    grand.append(cell("th", gettext("Change, first to last film")), cell("td", change, COLUMNS.length, "change"));
    foot.append(grand);
    // The model's estimate beside the reader's own: the same change from its suggestions alone.
    const modelFirst = reads[0].sheet.suggestedTotal();
    const modelLast = reads[reads.length - 1].sheet.suggestedTotal();
    if (modelFirst !== null && modelLast !== null) {
      const model = document.createElement("tr");
      model.append(cell("th", gettext("Model's estimate of the change")), cell("td", String(modelLast - modelFirst), COLUMNS.length, "model-change"));
      foot.append(model);
    }
  }
  root.style.setProperty("--totals-height", `${foot.offsetHeight}px`);
  const notes = [];
  if (unconfirmed) notes.push(interpolate(gettext("%(n)s suggestions not counted yet."), { n: unconfirmed }));
  if (missing) notes.push(interpolate(gettext("%(n)s cells not graded yet."), { n: missing }));
  $("[data-totals-note]").textContent = notes.join(" ");
  for (const read of reads) read.viewer?.setCompleted(read.sheet.completedJoints());
}

// Save state: the worst of the radiographs' savers --------------------------------------------

const STATE_RANK = ["saved", "dirty", "saving", "offline", "error", "conflict"];

function renderSaveState() {
  let state = "saved";
  let worst = null;
  for (const read of openReads) {
    if (STATE_RANK.indexOf(read.saver.state) > STATE_RANK.indexOf(state)) {
      state = read.saver.state;
      worst = read;
    }
  }
  if (submitted || readOnly) state = "submitted";
  showSaveState($("[data-save-state]"), {
    state,
    detail: worst ? worst.saver.detail : {},
    unsaved: openReads.reduce((n, read) => n + read.sheet.pendingItems().length, 0),
  });
}

function notify(message) {
  $("[data-sheet-notice]").textContent = message;
}

function viewerNotice(message) {
  setNotice($("[data-viewer-notice]"), message);
}

// Viewer: one per radiograph, on stacked stages; the selected cell's side is the one shown ------

let shown = null;
let heatmapOn = false;
const filter = document.getElementById("window-level");

for (const read of reads) {
  const viewer = new Viewer({
    stage: root.querySelector(`[data-stage="${read.id}"]`),
    width: read.assignment.radiograph.width,
    height: read.assignment.radiograph.height,
    displayUrl: read.urls.display_image,
    fullUrl: read.urls.full_image,
    shortLabels: read.short_labels,
    filter,
    editable: !read.readOnly,
  });
  viewer.setLandmarks(read.landmarks);
  viewer.addEventListener("select", (event) => {
    const row = gridRows.find((item) => item.section.body_part === read.body_part && item.joint === event.detail.joint);
    const own = row ? row.cols.filter((slot) => slot && slot.read === read) : [];
    activate(own.find((slot) => slot.dimension === active?.dimension) || own[0]);
  });
  read.landmarkQueue = new LandmarkQueue({ url: read.urls.landmarks, csrfToken, viewer, notify });
  viewer.addEventListener("move", (event) => read.landmarkQueue.add(event.detail));
  viewer.addEventListener("view", () => {
    // The zoom relative to the film's fitted size, on the stage: what "in step" means here.
    if (paired) viewer.stage.dataset.zoom = (viewer.scale / viewer.fitScale()).toFixed(3);
    follow(viewer, "view");
  });
  viewer.addEventListener("window", () => {
    follow(viewer, "window");
    if (shown === read) showWindow(root, viewer);
  });
  viewer.addEventListener("heatmap", (event) => {
    if (heatmapOn && shown === read) viewerNotice(heatmapNotice(event.detail.state));
  });
  viewer.addEventListener("loading", (event) => {
    if (shown !== read) return;
    const notice = loadingNotice(event.detail);
    if (notice) viewerNotice(notice);
    else updateHeatmap();
  });
  read.viewer = viewer;
}
if (paired) {
  root.classList.add("paired");
  for (const read of reads) {
    const stage = root.querySelector(`[data-stage="${read.id}"]`);
    stage.hidden = false;
    const label = document.createElement("span");
    label.className = "stage-label";
    const date = config.columns.find((column) => column.key === read.column)?.date;
    label.textContent = date ? `${read.name} · ${date}` : read.name;
    stage.append(label);
  }
}

// Paired reading: every film follows the one the reader zooms, pans or windows: the same zoom
// relative to the film's size, and the selected joint at the same place in each stage (the films'
// poses differ, so matching pixels would not match joints).
let aligning = false;

function alignView(source, target) {
  if (source.fitted) return target.fit();
  target.scale = target.fitScale() * (source.scale / source.fitScale());
  target.fitted = false;
  const from = source.landmarks.get(source.selected);
  const to = target.landmarks.get(source.selected);
  if (from && to) {
    // The image point that puts the joint where it is in the source stage, relative to the stage.
    const [sx, sy] = source.toScreen(from.x, from.y);
    const x = to.x + (target.cssWidth / 2 - (sx / source.cssWidth) * target.cssWidth) / target.scale;
    const y = to.y + (target.cssHeight / 2 - (sy / source.cssHeight) * target.cssHeight) / target.scale;
    target.centerOn({ x, y });
  } else {
    const [x, y] = source.toImage(source.cssWidth / 2, source.cssHeight / 2);
    target.centerOn({ x: (x / source.width) * target.width, y: (y / source.height) * target.height });
  }
}

function follow(source, what) {
  if (!paired || aligning) return;
  aligning = true;
  try {
    for (const read of reads) {
      if (!read.viewer || read.viewer === source || !read.viewer.source) continue;
      if (what === "window") read.viewer.setWindow({ brightness: source.brightness, contrast: source.contrast, invert: source.invert });
      else alignView(source, read.viewer);
    }
  } finally {
    aligning = false;
  }
}

function showRead(read) {
  if (shown === read) return;
  if (paired) {
    // All films stay on screen; the selected column's film is marked.
    for (const other of reads) root.querySelector(`[data-stage="${other.id}"]`).classList.toggle("current", other === read);
    if (shown) shown.viewer.setHeatmap(null);
  } else if (shown) {
    root.querySelector(`[data-stage="${shown.id}"]`).hidden = true;
    shown.viewer.setHeatmap(null);
  }
  shown = read;
  root.querySelector(`[data-stage="${read.id}"]`).hidden = false;
  // The filter is shared by the stacked images: write this one's window into it.
  read.viewer.setWindow({});
  $("[data-viewer-side]").textContent = read.name;
  root.dataset.side = `${read.body_part}:${columnOf(read)}`;
  viewerNotice("");
}

function updateHeatmap() {
  $('[data-action="heatmap"]').setAttribute("aria-pressed", String(heatmapOn));
  if (!shown) return;
  if (!heatmapOn) {
    shown.viewer.setHeatmap(null);
    viewerNotice("");
    return;
  }
  if (!shown.sheet.modelVersion) {
    shown.viewer.setHeatmap(null);
    viewerNotice(gettext("No model yet: heatmaps appear once a model is trained and active."));
    return;
  }
  const url = active && active.read === shown ? shown.sheet.cells.get(active.code).suggestion?.heatmap_url : null;
  viewerNotice(url ? "" : gettext("No heatmap for this joint and dimension."));
  shown.viewer.setHeatmap(url || null);
}

// Suggestions ---------------------------------------------------------------------------------

// Unlike the single-image page's loader, no poll while there is no model: the form asks again only
// when the reader comes back to the tab (below).
async function loadSuggestions(read, attempt = 0) {
  try {
    const response = await fetch(read.urls.suggestions, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    read.sheet.setSuggestions(await response.json());
    updateHeatmap();
    renderPicker();
  } catch {
    setTimeout(() => loadSuggestions(read, attempt + 1), Math.min(30, 2 ** attempt) * 1000);
  }
}

// No model yet: ask again when the reader comes back to the tab.
window.addEventListener("focus", () => {
  if (!assisted || submitted) return;
  for (const read of openReads) if (!read.sheet.modelVersion) loadSuggestions(read);
});

// Conflicts -----------------------------------------------------------------------------------

const conflictDialog = document.querySelector("[data-conflict-dialog]");

const conflictEntries = () => openReads.flatMap((read) => read.sheet.conflicts().map((cell) => ({
  sheet: read.sheet, cell, name: `conflict-${read.id}-${cell.code}`, legend: `${read.name}: ${cell.label}, ${DIMENSION_NAMES[cell.dimension]}`,
})));

function showConflicts() {
  const list = conflictDialog.querySelector("[data-conflict-list]");
  renderConflictList(list, conflictEntries());
  if (list.children.length && !conflictDialog.open) conflictDialog.showModal();
}

bindConflictDialog(conflictDialog, { entries: conflictEntries, resolved: () => { for (const read of openReads) read.saver.flush(); } });

// Suggestions as a second opinion -------------------------------------------------------------

function acceptSuggestions() {
  if (!openReads.some((read) => read.sheet.hasSuggestions())) return notify(gettext("No suggestions for this radiograph."));
  if (!openReads.some((read) => read.sheet.unconfirmedSuggestions().length)) return notify(gettext("Every suggestion is already confirmed."));
  let confirmed = 0;
  for (const read of openReads) confirmed += read.sheet.acceptAll({ only: needLook ? read.visited : null }).length;
  const left = orderedSlots().filter((slot) => !slot.read.readOnly && slot.read.sheet.cells.get(slot.code).suggestion && !slot.read.sheet.decided(slot.read.sheet.cells.get(slot.code)));
  if (!left.length) return notify(interpolate(gettext("%(n)s suggestions confirmed."), { n: confirmed }));
  notify(interpolate(
    gettext("%(n)s suggestions confirmed; %(left)s not looked at yet: go to each (Enter confirms and moves on), then press A again."),
    { n: confirmed, left: left.length },
  ));
  activate(left[0], { look: false });
}

const stopForUnlooked = unlookedSubmitCheck(notify);
const onlyUnlookedSuggestions = () => needLook
  && openReads.some((read) => read.sheet.cells.size > 0)
  && openReads.every((read) => read.sheet.allUnlookedSuggestions(read.visited));

// Submit: the whole visit in one request --------------------------------------------------------

async function submit() {
  if (readOnly || submitted || stopForUnlooked(onlyUnlookedSuggestions)) return;
  const undecided = orderedSlots().filter((slot) => !slot.read.readOnly && !slot.read.sheet.decided(slot.read.sheet.cells.get(slot.code)));
  if (undecided.length) {
    notify(interpolate(gettext("%(n)s cells are not graded yet; grade or accept them before submitting."), { n: undecided.length }));
    activate(undecided[0]);
    return;
  }
  if (openReads.some((read) => read.sheet.conflicts().length)) return showConflicts();
  const button = $('[data-action="submit"]');
  button.disabled = true;
  notify(gettext("Submitting…"));
  try {
    await Promise.all(openReads.map((read) => read.saver.settle()));
    const body = openReads.map((read) => {
      const grades = read.sheet.pendingItems();
      if (grades.length) read.sheet.markSent(grades);
      return { assignment: read.id, grades };
    });
    const response = await fetch(config.urls.submit, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: JSON.stringify({ reads: body, seconds_spent: activeSeconds }),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 409) {
      let real = 0;
      for (const read of openReads) real += read.sheet.markConflicts((answer.conflicts || []).filter((item) => item.assignment === read.id)).length;
      if (real) showConflicts();
      notify(gettext("Some grades were saved elsewhere meanwhile; nothing was submitted. Check them and submit again."));
      return;
    }
    if (!response.ok) {
      notify(firstMessage(answer) || gettext("The server refused the submission."));
      return;
    }
    for (const read of openReads) read.sheet.acknowledge(answer.grades[String(read.id)] || []);
    submitted = true;
    for (const read of reads) localStorage.removeItem(read.draftKey);
    localStorage.removeItem(visitKey);
    renderSaveState();
    notify(gettext("Submitted. Opening the next visit…"));
    window.location.assign(config.urls.next);
  } catch {
    notify(gettext("Cannot reach the server; your grades are kept. Try again when the connection is back."));
  } finally {
    if (!submitted) {
      button.disabled = false;
      // Whatever was not submitted goes on being saved as usual.
      for (const read of openReads) if (read.sheet.pendingItems().length) read.saver.schedule();
    }
  }
}

// Controls ------------------------------------------------------------------------------------

const shortcutsDialog = document.querySelector("[data-shortcuts-dialog]");

function showShortcuts() {
  showShortcutDialog(shortcutsDialog, () => [
    [["S"], paired ? gettext("Next film: the same joint on the next film of the series") : gettext("Show the other side: the same joint on the other hand or foot")],
    [["←", "→"], gettext("Previous / next column (erosion and JSN of the right, then of the left)")],
    [["E", "J"], gettext("Grade erosion (E) or joint space narrowing (J)")],
    ...shortcutList({ assisted, needLook }).filter(([keys]) => !keys.includes("←") && !keys.includes("Shift+R")),
  ]);
}

const viewerOf = () => shown.viewer;
const actions = {
  ...imageActions(viewerOf),
  "switch-side": switchSide,
  markers: () => toggleMarkers($('[data-action="markers"]'), viewerOf(), reads.map((read) => read.viewer)),
  heatmap: () => {
    heatmapOn = !heatmapOn;
    updateHeatmap();
  },
  "accept-all": acceptSuggestions,
  "reset-cell": () => {
    if (active && !active.read.sheet.resetCell(active.code).length && !active.read.sheet.cells.get(active.code).suggestion) notify(gettext("No suggestion for this cell."));
  },
  "entry-order": () => setEntryOrder(entryOrder === "joint" ? "column" : "joint"),
  undo: () => active?.read.sheet.undo(),
  redo: () => active?.read.sheet.redo(),
  shortcuts: showShortcuts,
  submit,
};

function returnFocusToGrid() {
  if (document.querySelector("dialog[open]") || !active) return;
  active.td.focus({ preventScroll: true });
}

bindActionButtons(root.querySelectorAll("button[data-action]"), actions, returnFocusToGrid);
bindWindowSliders(root, viewerOf, returnFocusToGrid);

// Shift+R has no key of its own here: it resets the cell, as R does.
bindSheetKeys({
  ready: () => Boolean(active),
  // A held "1" is set before any other key acts.
  beforeKey: (event, command) => entry.beforeKey(event, command),
  submit,
  undo: actions.undo,
  redo: actions.redo,
  saveNow: () => openReads.forEach((read) => read.saver.flush()),
  tab: step,
  down: () => moveVertical(1),
  up: () => moveVertical(-1),
  left: () => moveHorizontal(-1),
  right: () => moveHorizontal(1),
  digit: (digit) => entry.digit(digit),
  half: () => entry.half(),
  enter: confirmActiveCell,
  letters: {
    ...imageKeys(actions),
    s: actions["switch-side"],
    e: () => switchDimension("erosion"),
    j: () => switchDimension("jsn"),
    a: actions["accept-all"],
    r: actions["reset-cell"],
    o: actions["entry-order"],
    "?": actions.shortcuts,
  },
});

// Active time of the visit: counted while the page is visible and the reader did something lately.
const readingNow = watchActivity();

function renderTimer() {
  $("[data-timer]").textContent = clockText(activeSeconds);
}

setInterval(() => {
  if (!readOnly && !submitted && readingNow()) {
    activeSeconds += 1;
    renderTimer();
    if (activeSeconds % 5 === 0 && active) saveDraft(active.read);
  }
  if (openReads.some((read) => read.saver.state === "offline")) renderSaveState();
}, 1000);

// As on the single page: the pending saves leave with keepalive, then the drafts record them as sent.
window.addEventListener("pagehide", () => {
  for (const read of openReads) {
    read.saver.sendBeacon();
    saveDraft(read);
  }
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") openReads.forEach(saveDraft);
});

// Start ---------------------------------------------------------------------------------------

buildTable();
setEntryOrder(entryOrder);
for (const read of reads) {
  read.sheet.addEventListener("change", (event) => {
    for (const code of event.detail.codes) {
      const slot = slotOf(read, code);
      if (slot) renderCell(slot);
    }
    renderTotals();
    renderPicker();
    saveDraft(read);
    if (read.sheet.pendingItems().length && !read.saver.inFlight && !submitted) read.saver.schedule();
    renderSaveState();
  });
  read.sheet.addEventListener("sent", () => saveDraft(read));
  read.saver.addEventListener("conflict", showConflicts);
  read.saver.addEventListener("state", renderSaveState);
  read.sheet.restoreDraft(read.stored);
}
for (const slot of slots.values()) renderCell(slot);
renderTotals();
renderTimer();
// A reload continues where the reader was; a fresh page starts at the first cell left to grade.
const ordered = orderedSlots();
const remembered = visitDraft.active && reads.find((read) => read.id === visitDraft.active.read);
const start = (remembered && slotOf(remembered, visitDraft.active.code))
  || ordered.find((slot) => !slot.read.readOnly && !slot.read.sheet.decided(slot.read.sheet.cells.get(slot.code)))
  || ordered[0];
if (start) activate(start, { look: false });
if (readOnly) root.classList.add("read-only");
if (openReads.some((read) => read.sheet.conflicts().length)) {
  for (const read of openReads) if (read.sheet.conflicts().length) read.saver.state = "conflict";
  showConflicts();
} else {
  for (const read of openReads) if (read.sheet.pendingItems().length) read.saver.flush();
}
renderSaveState();
// The selected side's image first, then the others, so switching sides finds them decoded.
const firstShown = shown;
(firstShown ? firstShown.viewer.load() : Promise.resolve()).then(
  () => {
    root.setAttribute("data-image", "painted");
    for (const read of reads) if (read !== firstShown) read.viewer.load().catch(() => {});
  },
  () => viewerNotice(gettext("The image could not be loaded. Reload the page to try again.")),
);
Promise.all(assisted ? openReads.map((read) => loadSuggestions(read)) : []).then(() => { root.dataset.state = "ready"; });
