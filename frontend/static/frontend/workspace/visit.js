// The visit form: every radiograph of one patient visit scored on one table, as on the paper form
// (joints as rows; Right/Left x Erosion/JSN as columns; one section per body part). Each radiograph
// keeps its own ScoreSheet, Saver and localStorage draft, exactly as on the single-image page (the
// draft keys are the same, so either page picks up the other's unsaved work); the viewer shows the
// radiograph of the selected cell's side. Submitting sends the last unsaved grades of every
// radiograph and submits them all in one request, which the server applies whole or not at all.
import { gettext, interpolate } from "./i18n.js";
import { DIMENSIONS, ScoreSheet } from "./scoresheet.js";
import { Saver, firstMessage } from "./saver.js";
import { shortcutList } from "./shortcuts.js";
import { Viewer } from "./viewer.js";

const config = JSON.parse(document.getElementById("visit-config").textContent);
const root = document.getElementById("visit");
const $ = (selector) => root.querySelector(selector);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
const assisted = config.project.suggestions === "assisted";
const needLook = assisted && config.project.suggestions_need_look !== false;
// The columns: the sides of a visit, or (config.columns) the films of a patient's series, where a
// read's `column` names its film and the "other side" key flips to the next film.
const SIDES = config.columns ? config.columns.map((column) => column.key) : ["R", "L"];
const COLUMNS = SIDES.flatMap((side) => DIMENSIONS.map((dimension) => ({ side, dimension })));
const DIMENSION_NAMES = { erosion: gettext("Erosion"), jsn: gettext("JSN") };
const SIDE_NAMES = config.columns
  ? Object.fromEntries(config.columns.map((column) => [column.key, column.label]))
  : { R: gettext("Right"), L: gettext("Left") };
const columnOf = (read) => read.column || read.laterality;
// Paired reading shows every film at once, their viewers kept in step.
const paired = Boolean(config.columns);
const PART_NAMES = { hand: gettext("hand"), foot: gettext("foot") };

function loadJSON(key) {
  try {
    return JSON.parse(localStorage.getItem(key)) || {};
  } catch {
    return {};
  }
}

const visitKey = `ra-visit:${config.user}:${config.visit.id}`;
const visitDraft = loadJSON(visitKey);
let activeSeconds = Number.isInteger(visitDraft.seconds) ? visitDraft.seconds : 0;
let submitted = false;

// One read per radiograph of the visit -------------------------------------------------------

const reads = config.reads.map((read) => {
  const readOnly = read.assignment.status === "submitted";
  const draftKey = `ra-workspace:${config.user}:${read.assignment.id}`;
  const stored = loadJSON(draftKey);
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
}

function renderCell(slot) {
  const { read, code, td } = slot;
  const cell = read.sheet.cells.get(code);
  const view = read.sheet.view(code);
  td.textContent = view.value === null ? "–" : String(view.value);
  td.classList.toggle("empty", view.kind === "empty");
  td.classList.toggle("suggested", view.kind === "suggested");
  td.classList.toggle("confirmed", view.kind === "confirmed");
  td.classList.toggle("from-model", view.kind === "confirmed" && view.source === "accepted");
  td.classList.toggle("pending", view.pending);
  td.classList.toggle("conflict", Boolean(view.conflict));
  td.classList.toggle("visited", read.visited.has(code));
  let state;
  if (view.kind === "empty") state = gettext("not graded");
  else if (view.kind === "suggested") state = interpolate(gettext("%(value)s, suggested, not confirmed"), { value: view.value });
  else state = view.pending ? interpolate(gettext("%(value)s, not saved yet"), { value: view.value }) : String(view.value);
  td.setAttribute("aria-label", `${read.name}, ${interpolate(gettext("%(joint)s, %(dimension)s: %(state)s"), { joint: cell.label, dimension: DIMENSION_NAMES[cell.dimension], state })}`);
  // Order-known paired reading, if the project offers it: the previous film's consensus, small.
  const previous = read.previous_consensus ? read.previous_consensus[code] : undefined;
  if (previous !== undefined) {
    const hint = document.createElement("span");
    hint.className = "previous-consensus";
    hint.textContent = String(previous);
    hint.title = interpolate(gettext("previous consensus %(value)s"), { value: previous });
    td.append(hint);
    td.setAttribute("aria-label", `${td.getAttribute("aria-label")}; ${interpolate(gettext("previous consensus %(value)s"), { value: previous })}`);
  }
  if (cell.suggestion) {
    const percents = cell.suggestion.distribution.map((p, grade) => `${grade}: ${Math.round(p * 100)}%`).join("  ");
    td.title = interpolate(gettext("Suggestion %(label)s (%(percents)s)"), { label: cell.suggestion.label, percents });
  } else td.removeAttribute("title");
}

const slotOf = (read, code) => slots.get(`${read.id}:${code}`);

// Navigation ----------------------------------------------------------------------------------

// Entry order, the reader's preference shared with the single-image page: "column" runs down each
// column of a side (erosion, then JSN), "joint" takes erosion then JSN of each joint. Either way one
// side of a body part is finished before the other, so the image changes only between sides.
const orderKey = `ra-workspace-order:${config.user}`;
let entryOrder = (() => {
  try {
    return localStorage.getItem(orderKey) === "joint" ? "joint" : "column";
  } catch {
    return "column";
  }
})();

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
  entryOrder = order === "joint" ? "joint" : "column";
  try {
    localStorage.setItem(orderKey, entryOrder);
  } catch {
    // Not kept across pages; still used on this one.
  }
  const button = $('[data-action="entry-order"]');
  button.setAttribute("aria-pressed", String(entryOrder === "joint"));
  button.textContent = entryOrder === "joint" ? gettext("Order: joints") : gettext("Order: columns");
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

let heldDigit = null;

function enterDigit(digit) {
  if (!active || active.read.readOnly) return;
  const { read, code } = active;
  const cell = read.sheet.cells.get(code);
  // Foot erosion goes to 10: a "1" waits a moment for a following "0".
  if (cell.maxGrade >= 10) {
    if (heldDigit && heldDigit.slot === active && digit === 0) {
      clearTimeout(heldDigit.timer);
      heldDigit = null;
      return commitGrade(active, 10);
    }
    if (digit === 1) {
      const slot = active;
      heldDigit = { slot, timer: setTimeout(() => { heldDigit = null; commitGrade(slot, 1); }, 700) };
      return;
    }
  }
  if (digit > cell.maxGrade) {
    notify(interpolate(gettext("%(dimension)s is graded 0–%(max)s."), { dimension: DIMENSION_NAMES[cell.dimension], max: cell.maxGrade }));
    return;
  }
  commitGrade(active, digit);
}

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
  const caption = document.createElement("span");
  caption.className = "picker-caption";
  caption.textContent = `${slot.read.name} · ${cell.label} · ${DIMENSION_NAMES[cell.dimension]}`;
  picker.append(caption);
  for (let grade = 0; grade <= cell.maxGrade; grade += 1) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(grade);
    button.setAttribute("aria-label", interpolate(gettext("Grade %(grade)s"), { grade }));
    if (slot.read.sheet.view(slot.code).value === grade) button.classList.add("current");
    button.addEventListener("click", () => {
      commitGrade(slot, grade);
      returnFocusToGrid();
    });
    picker.append(button);
  }
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
    images.append(cell("th", paired ? gettext("SvdH, each film") : interpolate(gettext("SvdH, each %(part)s"), { part })));
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
    grand.append(cell("th", gettext("SvdH total, visit")), cell("td", String(visitTotal), COLUMNS.length, "visit"));
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
  for (const read of reads) {
    const done = new Set(
      read.sheet.joints.filter((row) => DIMENSIONS.every((d) => !row[d] || read.sheet.decided(read.sheet.cells.get(row[d].code)))).map((row) => row.joint),
    );
    read.viewer?.setCompleted(done);
  }
}

// Save state: the worst of the radiographs' savers --------------------------------------------

const STATE_RANK = ["saved", "dirty", "saving", "offline", "error", "conflict"];

function renderSaveState() {
  const element = $("[data-save-state]");
  let state = "saved";
  let worst = null;
  for (const read of openReads) {
    if (STATE_RANK.indexOf(read.saver.state) > STATE_RANK.indexOf(state)) {
      state = read.saver.state;
      worst = read;
    }
  }
  if (submitted || readOnly) state = "submitted";
  const unsaved = openReads.reduce((n, read) => n + read.sheet.pendingItems().length, 0);
  let text;
  switch (state) {
    case "saved": text = gettext("Saved"); break;
    case "dirty": text = gettext("Unsaved changes"); break;
    case "saving": text = gettext("Saving…"); break;
    case "conflict": text = gettext("Conflict: choose which values to keep"); break;
    case "error": text = interpolate(gettext("Not saved: %(message)s"), { message: worst.saver.detail.message || gettext("refused by the server") }); break;
    case "submitted": text = gettext("Submitted"); break;
    default: {
      const seconds = Math.max(0, Math.ceil(((worst.saver.detail.retryAt || Date.now()) - Date.now()) / 1000));
      text = worst.saver.detail.reason === "signed-out"
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
  const element = $("[data-viewer-notice]");
  element.textContent = message;
  element.hidden = !message;
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
  viewer.addEventListener("move", (event) => queueLandmark(read, event.detail));
  viewer.addEventListener("view", () => {
    // The zoom relative to the film's fitted size, on the stage: what "in step" means here.
    if (paired) viewer.stage.dataset.zoom = (viewer.scale / viewer.fitScale()).toFixed(3);
    follow(viewer, "view");
  });
  viewer.addEventListener("window", () => {
    follow(viewer, "window");
    if (shown !== read) return;
    $('[data-control="brightness"]').value = String(Math.round(viewer.brightness));
    $('[data-control="contrast"]').value = String(Math.round(viewer.contrast));
    $('[data-action="invert"]').setAttribute("aria-pressed", String(viewer.invert));
  });
  viewer.addEventListener("heatmap", (event) => {
    if (!heatmapOn || shown !== read) return;
    const { state } = event.detail;
    if (state === "loading") viewerNotice(gettext("Loading heatmap…"));
    else if (state === "failed") viewerNotice(gettext("The heatmap could not be loaded."));
    else viewerNotice("");
  });
  viewer.addEventListener("loading", (event) => {
    if (shown !== read) return;
    if (event.detail.full) viewerNotice(gettext("Loading full resolution…"));
    else if (event.detail.failed) viewerNotice(gettext("Full resolution could not be loaded; zoom again to retry."));
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

// A moved marker becomes the reader's own landmark of that radiograph, retried until saved.
async function queueLandmark(read, { joint, x, y }, attempt = 0) {
  read.pendingLandmarks = read.pendingLandmarks || new Map();
  if (joint) read.pendingLandmarks.set(joint, { joint, x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 });
  clearTimeout(read.landmarkRetry);
  const sent = [...read.pendingLandmarks.values()];
  if (!sent.length) return;
  try {
    const response = await fetch(read.urls.landmarks, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ landmarks: sent }),
    });
    if (response.status === 400) {
      notify(firstMessage(await response.json()));
      read.pendingLandmarks.clear();
      return;
    }
    if (!response.ok) throw new Error(String(response.status));
    for (const item of sent) if (read.pendingLandmarks.get(item.joint) === item) read.pendingLandmarks.delete(item.joint);
    read.viewer.setLandmarks((await response.json()).landmarks);
    notify(gettext("Marker saved as your landmark."));
  } catch {
    notify(gettext("Marker position not saved yet; retrying."));
    read.landmarkRetry = setTimeout(() => queueLandmark(read, {}, attempt + 1), Math.min(30, 2 ** attempt) * 1000);
  }
}

// Suggestions ---------------------------------------------------------------------------------

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

function showConflicts() {
  const list = conflictDialog.querySelector("[data-conflict-list]");
  list.replaceChildren();
  for (const read of openReads) {
    for (const cell of read.sheet.conflicts()) {
      const fieldset = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = `${read.name}: ${cell.label}, ${DIMENSION_NAMES[cell.dimension]}`;
      fieldset.append(legend);
      const options = [
        ["mine", interpolate(gettext("Keep mine: %(value)s"), { value: cell.conflict.mine })],
        ["theirs", interpolate(gettext("Use the saved value: %(value)s"), { value: cell.conflict.theirs === null ? gettext("none") : cell.conflict.theirs })],
      ];
      for (const [choice, text] of options) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "radio";
        input.name = `conflict-${read.id}-${cell.code}`;
        input.value = choice;
        input.checked = choice === "mine";
        label.append(input, ` ${text}`);
        fieldset.append(label);
      }
      list.append(fieldset);
    }
  }
  if (list.children.length && !conflictDialog.open) conflictDialog.showModal();
}

conflictDialog.querySelector('[data-action="resolve-conflicts"]').addEventListener("click", () => {
  for (const read of openReads) {
    for (const cell of read.sheet.conflicts()) {
      const choice = conflictDialog.querySelector(`input[name="conflict-${read.id}-${cell.code}"]:checked`)?.value || "mine";
      read.sheet.resolveConflict(cell.code, choice);
    }
  }
  conflictDialog.close();
  for (const read of openReads) read.saver.flush();
});
conflictDialog.addEventListener("cancel", (event) => event.preventDefault());

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

let unlookedSubmitAsked = false;

function onlyUnlookedSuggestions() {
  const all = openReads.flatMap((read) => [...read.sheet.cells.values()].map((cell) => [read, cell]));
  return needLook && all.length > 0 && all.every(([read, cell]) => {
    const decided = read.sheet.decided(cell);
    return decided && cell.suggestion && decided.value === cell.suggestion.label && !read.visited.has(cell.code);
  });
}

// Submit: the whole visit in one request --------------------------------------------------------

async function submit() {
  if (readOnly || submitted) return;
  if (!unlookedSubmitAsked && onlyUnlookedSuggestions()) {
    unlookedSubmitAsked = true;
    notify(gettext("Every grade is a model suggestion you have not looked at. Submit again to send it as it is, or check the joints first."));
    return;
  }
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
  const table = shortcutsDialog.querySelector("[data-shortcut-table]");
  if (!table.rows.length) {
    const rows = [
      [["S"], paired ? gettext("Next film: the same joint on the next film of the series") : gettext("Show the other side: the same joint on the other hand or foot")],
      [["←", "→"], gettext("Previous / next column (erosion and JSN of the right, then of the left)")],
      [["E", "J"], gettext("Grade erosion (E) or joint space narrowing (J)")],
      ...shortcutList({ assisted, needLook }).filter(([keys]) => !keys.includes("←") && !keys.includes("Shift+R")),
    ];
    for (const [keys, description] of rows) {
      const tr = table.insertRow();
      tr.insertCell().innerHTML = keys.map((key) => `<kbd>${key}</kbd>`).join(" ");
      tr.insertCell().textContent = description;
    }
  }
  shortcutsDialog.showModal();
}

const viewerOf = () => shown.viewer;
const actions = {
  "switch-side": switchSide,
  "zoom-in": () => viewerOf().zoomStep(1),
  "zoom-out": () => viewerOf().zoomStep(-1),
  fit: () => viewerOf().fit(),
  invert: () => viewerOf().setWindow({ invert: !viewerOf().invert }),
  "reset-image": () => viewerOf().resetImage(),
  markers: () => {
    const on = !viewerOf().showMarkers;
    for (const read of reads) {
      read.viewer.showMarkers = on;
      read.viewer.requestDraw();
    }
    $('[data-action="markers"]').setAttribute("aria-pressed", String(on));
  },
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

for (const button of root.querySelectorAll("button[data-action]")) {
  const handler = actions[button.dataset.action];
  if (!handler) continue;
  button.addEventListener("click", () => {
    handler();
    if (!["submit", "shortcuts"].includes(button.dataset.action)) returnFocusToGrid();
  });
}
$('[data-control="brightness"]').addEventListener("input", (event) => viewerOf().setWindow({ brightness: Number(event.target.value) }));
$('[data-control="contrast"]').addEventListener("input", (event) => viewerOf().setWindow({ contrast: Number(event.target.value) }));
for (const slider of root.querySelectorAll("input[type=range][data-control]")) {
  slider.addEventListener("change", returnFocusToGrid);
  slider.addEventListener("pointerup", returnFocusToGrid);
}

const letterKeys = {
  s: actions["switch-side"],
  e: () => switchDimension("erosion"),
  j: () => switchDimension("jsn"),
  a: actions["accept-all"],
  r: actions["reset-cell"],
  o: actions["entry-order"],
  f: actions.fit,
  n: () => viewerOf().actualSize(),
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
  if (event.defaultPrevented || document.querySelector("dialog[open]") || !active) return;
  const { target, key } = event;
  const command = event.ctrlKey || event.metaKey;
  if (command && key === "Enter") return prevent(event, submit);
  if (command && !event.altKey) {
    const lower = key.toLowerCase();
    if (lower === "z") return prevent(event, event.shiftKey ? actions.redo : actions.undo);
    if (lower === "y") return prevent(event, actions.redo);
    if (lower === "s") return prevent(event, () => openReads.forEach((read) => read.saver.flush()));
    return;
  }
  if (event.altKey || target.closest?.("input, select, textarea")) return;
  if (target.closest?.("button, a") && (key === "Enter" || key === " ")) return;
  if (key === "Tab") {
    if (!target.closest?.("[data-scores]") && target !== document.body) return;
    if (step(event.shiftKey ? -1 : 1)) event.preventDefault();
    return;
  }
  if (key === "ArrowDown") return prevent(event, () => moveVertical(1));
  if (key === "ArrowUp") return prevent(event, () => moveVertical(-1));
  if (key === "ArrowLeft") return prevent(event, () => moveHorizontal(-1));
  if (key === "ArrowRight") return prevent(event, () => moveHorizontal(1));
  if (/^[0-9]$/.test(key)) return prevent(event, () => enterDigit(Number(key)));
  if (key === "Enter") return prevent(event, confirmActiveCell);
  const letter = key.length === 1 ? key.toLowerCase() : key;
  if (letterKeys[letter]) prevent(event, letterKeys[letter]);
});

function prevent(event, handler) {
  event.preventDefault();
  handler();
}

// Active time of the visit: counted while the page is visible and the reader did something lately.
let lastActivity = Date.now();
for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  window.addEventListener(type, () => { lastActivity = Date.now(); }, { capture: true, passive: true });
}

function renderTimer() {
  $("[data-timer]").textContent = `${Math.floor(activeSeconds / 60)}:${String(activeSeconds % 60).padStart(2, "0")}`;
}

setInterval(() => {
  if (!readOnly && !submitted && document.visibilityState === "visible" && Date.now() - lastActivity < 60_000) {
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
