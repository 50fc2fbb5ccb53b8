// The radiograph viewer: two stacked canvases, the image below (window/level through an SVG
// filter, so dragging the contrast costs no pixel loop) and markers and heatmap above. Image
// coordinates are always the stored radiograph's pixels, whatever rendition is on screen.

const ZOOM_STEP = 1.25;
const MAX_SCALE = 8; // CSS pixels per image pixel
const HIT_RADIUS = 13;
const DRAG_THRESHOLD = 4;

export class Viewer extends EventTarget {
  constructor({ stage, width, height, displayUrl, fullUrl, shortLabels, filter, editable }) {
    super();
    this.stage = stage;
    this.imageCanvas = stage.querySelector(".image-layer");
    this.overlayCanvas = stage.querySelector(".overlay-layer");
    this.width = width;
    this.height = height;
    this.urls = { display: displayUrl, full: fullUrl };
    this.shortLabels = shortLabels;
    this.filterFuncs = filter ? [...filter.querySelectorAll("feFuncR, feFuncG, feFuncB")] : [];
    this.editable = editable;
    this.source = null;
    this.fullRequested = false;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.fitted = true;
    this.invert = false;
    this.brightness = 0;
    this.contrast = 0;
    this.landmarks = new Map();
    this.completed = new Set();
    this.selected = null;
    this.showMarkers = true;
    this.heatmap = null;
    this.drawQueued = false;
    this.gesture = null;
    new ResizeObserver(() => this.#resize()).observe(stage);
    this.#bindPointer();
  }

  async load() {
    const image = new Image();
    image.src = this.urls.display;
    await image.decode();
    this.source = image;
    this.#resize();
    this.fit();
    this.#drawNow();
    // The mark lands in the frame after the one that painted the image.
    requestAnimationFrame(() => {
      performance.mark("radiograph-first-paint");
      this.dispatchEvent(new Event("firstpaint"));
    });
  }

  setLandmarks(landmarks) {
    this.landmarks = new Map(landmarks.map((item) => [item.joint, { x: item.x, y: item.y, source: item.source }]));
    this.requestDraw();
  }

  setCompleted(joints) {
    this.completed = joints;
    this.requestDraw();
  }

  select(joint) {
    this.selected = joint;
    const point = this.landmarks.get(joint);
    if (point && !this.fitted) {
      const [sx, sy] = this.toScreen(point.x, point.y);
      const margin = 40;
      if (sx < margin || sy < margin || sx > this.cssWidth - margin || sy > this.cssHeight - margin) this.centerOn(point);
    }
    this.requestDraw();
  }

  // View ------------------------------------------------------------------------------------

  fitScale() {
    return Math.min(this.cssWidth / this.width, this.cssHeight / this.height);
  }

  fit() {
    this.scale = this.fitScale();
    this.tx = (this.cssWidth - this.width * this.scale) / 2;
    this.ty = (this.cssHeight - this.height * this.scale) / 2;
    this.fitted = true;
    this.#viewChanged();
  }

  actualSize() {
    const anchor = this.landmarks.get(this.selected) || { x: this.width / 2, y: this.height / 2 };
    this.scale = 1 / (window.devicePixelRatio || 1);
    this.fitted = false;
    this.centerOn(anchor);
  }

  centerOn(point) {
    this.tx = this.cssWidth / 2 - point.x * this.scale;
    this.ty = this.cssHeight / 2 - point.y * this.scale;
    this.#viewChanged();
  }

  zoomAt(factor, cx, cy) {
    const scale = Math.min(MAX_SCALE, Math.max(this.fitScale() * 0.5, this.scale * factor));
    this.tx = cx - ((cx - this.tx) * scale) / this.scale;
    this.ty = cy - ((cy - this.ty) * scale) / this.scale;
    this.scale = scale;
    this.fitted = false;
    this.#viewChanged();
  }

  // Keyboard and button zoom keeps the selected joint where it is on screen.
  zoomStep(direction) {
    const point = this.landmarks.get(this.selected);
    const [cx, cy] = point ? this.toScreen(point.x, point.y) : [this.cssWidth / 2, this.cssHeight / 2];
    this.zoomAt(direction > 0 ? ZOOM_STEP : 1 / ZOOM_STEP, cx, cy);
  }

  zoomPercent() {
    return Math.round(this.scale * (window.devicePixelRatio || 1) * 100);
  }

  toScreen(x, y) {
    return [this.tx + x * this.scale, this.ty + y * this.scale];
  }

  toImage(sx, sy) {
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  #viewChanged() {
    this.#maybeLoadFull();
    this.requestDraw();
    this.dispatchEvent(new Event("view"));
  }

  // The display rendition is enough until one of its pixels covers more than one screen pixel.
  #maybeLoadFull() {
    if (this.fullRequested || !this.source) return;
    const renditionScale = this.source.naturalWidth / this.width;
    if (this.scale * (window.devicePixelRatio || 1) <= renditionScale * 1.05) return;
    this.fullRequested = true;
    this.dispatchEvent(new CustomEvent("loading", { detail: { full: true } }));
    const image = new Image();
    image.src = this.urls.full;
    image
      .decode()
      .then(() => {
        this.source = image;
        this.requestDraw();
        this.dispatchEvent(new CustomEvent("loading", { detail: { full: false } }));
      })
      .catch(() => {
        this.fullRequested = false; // offline: try again on the next zoom
        this.dispatchEvent(new CustomEvent("loading", { detail: { full: false, failed: true } }));
      });
  }

  // Window and level ------------------------------------------------------------------------

  setWindow({ brightness = this.brightness, contrast = this.contrast, invert = this.invert }) {
    this.brightness = Math.max(-100, Math.min(100, brightness));
    this.contrast = Math.max(-100, Math.min(100, contrast));
    this.invert = invert;
    // out = (in - level) / width + 0.5, clamped by the filter; invert mirrors it.
    const windowWidth = 2 ** (-this.contrast / 50);
    const level = 0.5 - this.brightness / 200;
    let slope = 1 / windowWidth;
    let intercept = 0.5 - level / windowWidth;
    if (this.invert) {
      slope = -slope;
      intercept = 1 - intercept;
    }
    for (const func of this.filterFuncs) {
      func.setAttribute("slope", slope.toFixed(4));
      func.setAttribute("intercept", intercept.toFixed(4));
    }
    const identity = !this.invert && this.brightness === 0 && this.contrast === 0;
    this.imageCanvas.style.filter = identity ? "" : "url(#window-level)";
    this.dispatchEvent(new Event("window"));
  }

  resetImage() {
    this.setWindow({ brightness: 0, contrast: 0, invert: false });
    this.fit();
  }

  // Heatmap ---------------------------------------------------------------------------------

  setHeatmap(url) {
    if (!url) {
      this.heatmap = null;
      this.requestDraw();
      return;
    }
    if (this.heatmap && this.heatmap.url === url) {
      // Still on its way: say so again, since the page clears its notice on every redraw request.
      if (!this.heatmap.image) this.dispatchEvent(new CustomEvent("heatmap", { detail: { state: "loading" } }));
      return;
    }
    const image = new Image();
    this.heatmap = { url, image: null };
    // The map is computed on request and takes seconds on a CPU: the page shows that it is coming.
    this.dispatchEvent(new CustomEvent("heatmap", { detail: { state: "loading" } }));
    image.src = url;
    image.decode().then(() => {
      if (this.heatmap && this.heatmap.url === url) {
        this.heatmap.image = image;
        this.requestDraw();
        this.dispatchEvent(new CustomEvent("heatmap", { detail: { state: "shown" } }));
      }
    }).catch(() => {
      if (this.heatmap && this.heatmap.url === url) this.dispatchEvent(new CustomEvent("heatmap", { detail: { state: "failed" } }));
    });
  }

  // Drawing ---------------------------------------------------------------------------------

  #resize() {
    const rect = this.stage.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.cssWidth = Math.max(1, rect.width);
    this.cssHeight = Math.max(1, rect.height);
    for (const canvas of [this.imageCanvas, this.overlayCanvas]) {
      canvas.width = Math.round(this.cssWidth * dpr);
      canvas.height = Math.round(this.cssHeight * dpr);
    }
    if (this.fitted && this.source) this.fit();
    else this.requestDraw();
  }

  requestDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => this.#drawNow());
  }

  #drawNow() {
    this.drawQueued = false;
    const dpr = window.devicePixelRatio || 1;
    const context = this.imageCanvas.getContext("2d");
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    // Transparent around the image, so inverting the grey levels leaves the surround black.
    context.clearRect(0, 0, this.cssWidth, this.cssHeight);
    if (this.source) {
      context.imageSmoothingEnabled = true;
      context.imageSmoothingQuality = "high";
      context.drawImage(this.source, this.tx, this.ty, this.width * this.scale, this.height * this.scale);
    }
    this.#drawOverlay(dpr);
  }

  #drawOverlay(dpr) {
    const context = this.overlayCanvas.getContext("2d");
    context.setTransform(dpr, 0, 0, dpr, 0, 0);
    context.clearRect(0, 0, this.cssWidth, this.cssHeight);
    if (this.heatmap && this.heatmap.image) {
      context.globalAlpha = 0.45;
      context.drawImage(this.heatmap.image, this.tx, this.ty, this.width * this.scale, this.height * this.scale);
      context.globalAlpha = 1;
    }
    if (!this.showMarkers) return;
    // Rings sized like a joint at the current zoom, with an open centre: the marker must never
    // hide the joint space it points at.
    const ring = Math.max(6, Math.min(40, 0.011 * Math.max(this.width, this.height) * this.scale));
    this.ringRadius = ring;
    const markers = [...this.landmarks.entries()].map(([joint, p]) => {
      const [sx, sy] = this.toScreen(p.x, p.y);
      const selected = joint === this.selected;
      return { joint, sx, sy, selected, radius: selected ? ring * 1.35 : ring };
    });
    for (const marker of markers) this.#drawMarker(context, marker);
    this.#drawLabels(context, markers);
  }

  #drawMarker(context, { joint, sx, sy, selected, radius }) {
    const colour = selected ? "#38bdf8" : this.completed.has(joint) ? "#4ade80" : "#fbbf24";
    context.beginPath();
    context.arc(sx, sy, radius, 0, Math.PI * 2);
    context.lineWidth = selected ? 5 : 3.5;
    context.strokeStyle = "rgba(0,0,0,0.6)";
    context.stroke();
    context.lineWidth = selected ? 2.5 : 1.6;
    context.strokeStyle = colour;
    context.stroke();
    if (!selected) return;
    // Ticks outside the ring make the selected joint easy to find at a glance.
    context.beginPath();
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      context.moveTo(sx + dx * (radius + 3), sy + dy * (radius + 3));
      context.lineTo(sx + dx * (radius + 10), sy + dy * (radius + 10));
    }
    context.lineWidth = 2.5;
    context.stroke();
  }

  // Each label goes right, left, above or below its marker, wherever it covers no other marker
  // and no other label; a label with no free place is left out (the selected one never is).
  #drawLabels(context, markers) {
    context.font = "600 12px system-ui, sans-serif";
    context.textBaseline = "middle";
    context.lineJoin = "round"; // mitred joins draw spikes at the corners of letters like M
    const placed = [];
    const overlaps = (box, own) =>
      placed.some((other) => box.x < other.x + other.w && other.x < box.x + box.w && box.y < other.y + other.h && other.y < box.y + box.h) ||
      markers.some((m) => m !== own && m.sx + m.radius + 2 > box.x && m.sx - m.radius - 2 < box.x + box.w && m.sy + m.radius + 2 > box.y && m.sy - m.radius - 2 < box.y + box.h);
    const ordered = [...markers].sort((a, b) => Number(b.selected) - Number(a.selected));
    for (const marker of ordered) {
      const text = this.shortLabels[marker.joint] || marker.joint;
      const w = context.measureText(text).width + 4;
      const h = 15;
      const { sx, sy, radius } = marker;
      const candidates = [
        { x: sx + radius + 5, y: sy - h / 2 },
        { x: sx - radius - 5 - w, y: sy - h / 2 },
        { x: sx - w / 2, y: sy - radius - 4 - h },
        { x: sx - w / 2, y: sy + radius + 4 },
      ].map((box) => ({ ...box, w, h }));
      const box = candidates.find((candidate) => !overlaps(candidate, marker)) || (marker.selected ? candidates[0] : null);
      if (!box) continue;
      placed.push(box);
      context.lineWidth = 3.5;
      context.strokeStyle = "rgba(0,0,0,0.85)";
      context.strokeText(text, box.x + 2, box.y + h / 2);
      context.fillStyle = marker.selected ? "#7dd3fc" : "#fff";
      context.fillText(text, box.x + 2, box.y + h / 2);
    }
  }

  // Pointer ---------------------------------------------------------------------------------

  #hit(sx, sy) {
    if (!this.showMarkers) return null;
    let best = null;
    let bestDistance = Math.max(HIT_RADIUS, (this.ringRadius || 0) + 3);
    for (const [joint, point] of this.landmarks) {
      const [px, py] = this.toScreen(point.x, point.y);
      const distance = Math.hypot(px - sx, py - sy);
      if (distance <= bestDistance) {
        best = joint;
        bestDistance = distance;
      }
    }
    return best;
  }

  #local(event) {
    const rect = this.overlayCanvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  #bindPointer() {
    const target = this.overlayCanvas;
    target.addEventListener("contextmenu", (event) => event.preventDefault());
    target.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [sx, sy] = this.#local(event);
      this.zoomAt(Math.exp(-event.deltaY * 0.0015), sx, sy);
    }, { passive: false });
    target.addEventListener("pointerdown", (event) => {
      const [sx, sy] = this.#local(event);
      target.setPointerCapture(event.pointerId);
      if (event.button === 2) {
        this.gesture = { kind: "window", sx, sy, brightness: this.brightness, contrast: this.contrast };
        return;
      }
      const joint = this.#hit(sx, sy);
      this.gesture = joint ? { kind: "marker", joint, sx, sy, moved: false } : { kind: "pan", sx, sy, tx: this.tx, ty: this.ty };
    });
    target.addEventListener("pointermove", (event) => {
      const [sx, sy] = this.#local(event);
      const gesture = this.gesture;
      if (!gesture) {
        target.style.cursor = this.#hit(sx, sy) ? (this.editable ? "move" : "pointer") : "grab";
        return;
      }
      if (gesture.kind === "pan") {
        this.tx = gesture.tx + sx - gesture.sx;
        this.ty = gesture.ty + sy - gesture.sy;
        this.fitted = false;
        this.requestDraw();
      } else if (gesture.kind === "window") {
        // Horizontal drag widens or narrows the window, vertical moves the level: the usual PACS gesture.
        this.setWindow({ contrast: gesture.contrast + (sx - gesture.sx) * 0.4, brightness: gesture.brightness - (sy - gesture.sy) * 0.4 });
      } else if (gesture.kind === "marker" && this.editable) {
        if (!gesture.moved && Math.hypot(sx - gesture.sx, sy - gesture.sy) < DRAG_THRESHOLD) return;
        gesture.moved = true;
        const [x, y] = this.toImage(sx, sy);
        const point = this.landmarks.get(gesture.joint);
        point.x = Math.max(0, Math.min(this.width, x));
        point.y = Math.max(0, Math.min(this.height, y));
        this.requestDraw();
      }
    });
    const finish = (event) => {
      const gesture = this.gesture;
      this.gesture = null;
      if (!gesture || gesture.kind !== "marker") {
        if (gesture && gesture.kind === "pan") this.dispatchEvent(new Event("view"));
        return;
      }
      this.dispatchEvent(new CustomEvent("select", { detail: { joint: gesture.joint } }));
      if (gesture.moved) {
        const point = this.landmarks.get(gesture.joint);
        this.dispatchEvent(new CustomEvent("move", { detail: { joint: gesture.joint, x: point.x, y: point.y } }));
      }
    };
    target.addEventListener("pointerup", finish);
    target.addEventListener("pointercancel", finish);
  }
}
