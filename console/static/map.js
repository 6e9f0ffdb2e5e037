// The city map of the console (一张图), drawn on a canvas from tongguan's own boundaries: districts, streets and
// unit grids are the base map, open cases are points coloured by status (a red ring when overdue), and a heat layer
// shows where one problem type gathers. Raster tiles are optional (config.tiles_url) and drawn underneath.
//
// Geometry is projected once to Web Mercator, in "local units" (zoom-12 pixels from the city centre) so that the
// canvas's float32 paths stay exact at street level, and kept as one Path2D per layer: a frame is a handful of
// stroke() calls. The boundaries are drawn into an off-screen bitmap that a drag only moves; the layer is redrawn
// once the view settles.

const TILE = 256;
const BASE_ZOOM = 12;
const MIN_ZOOM = 9;
const MAX_ZOOM = 19;

export const STATUS_COLOURS = {
  pending_accept: "#6c7a89",
  accepted: "#d4a017",
  registered: "#e8590c",
  dispatched: "#1c64d1",
  processing: "#0f9aa8",
  fixed: "#2b9348",
  checked: "#80b918",
  suspended: "#8e44ad",
};
export const OVERDUE_COLOUR = "#d00000";

function mercator(lon, lat) {
  const s = Math.sin((lat * Math.PI) / 180);
  return [((lon + 180) / 360) * TILE, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE];
}

// Each layer is fetched and built once per page; every map on the page shares it.
const layerCache = new Map();

function buildLayer(collection, origin) {
  const path = new Path2D();
  const labels = [];
  const k = 2 ** BASE_ZOOM;
  let points = 0;
  const bounds = [Infinity, Infinity, -Infinity, -Infinity];
  for (const feature of collection.features) {
    const g = feature.geometry;
    const polygons = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    let best = null;
    for (const polygon of polygons) {
      for (const ring of polygon) {
        for (let i = 0; i < ring.length; i++) {
          const [x, y] = mercator(ring[i][0], ring[i][1]);
          const lx = (x - origin[0]) * k;
          const ly = (y - origin[1]) * k;
          if (lx < bounds[0]) bounds[0] = lx;
          if (ly < bounds[1]) bounds[1] = ly;
          if (lx > bounds[2]) bounds[2] = lx;
          if (ly > bounds[3]) bounds[3] = ly;
          if (i === 0) path.moveTo(lx, ly);
          else path.lineTo(lx, ly);
        }
        // No closePath(): GeoJSON rings end on their first point already, and closePath() on one long path
        // makes chromium's path building quadratic (21 s for the city's 51,495 grids instead of 34 ms).
        points += ring.length;
      }
      const outer = polygon[0];
      if (outer && (!best || outer.length > best.length)) best = outer;
    }
    if (best && feature.properties && feature.properties.name) {
      let sx = 0;
      let sy = 0;
      for (const [lon, lat] of best) {
        const [x, y] = mercator(lon, lat);
        sx += x;
        sy += y;
      }
      labels.push({ name: feature.properties.name, x: (sx / best.length - origin[0]) * k, y: (sy / best.length - origin[1]) * k });
    }
  }
  return { path, labels, bounds, features: collection.features.length, points };
}

export class CityMap {
  constructor(container, { api, center, tilesUrl = "", statusNames = {}, layers = {}, onOpenCase = null, labels = {} }) {
    this.api = api;
    this.origin = mercator(center[0], center[1]);
    this.tilesUrl = tilesUrl;
    this.statusNames = statusNames;
    this.onOpenCase = onOpenCase;
    this.text = labels;
    this.show = { districts: true, streets: true, grids: true, cases: true, heat: false, ...layers };
    this.layers = {};
    this.cases = [];
    this.heat = null;
    this.marker = null;
    this.tiles = new Map();
    this.view = { x: 0, y: 0, scale: 1 };
    this.home = { x: 0, y: 0, scale: 1 };
    this.baseView = null;
    this.container = container;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "map-canvas";
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("role", "application");
    this.canvas.setAttribute("aria-label", labels.aria || "map");
    this.base = document.createElement("canvas");
    this.popup = document.createElement("div");
    this.popup.className = "map-popup";
    this.popup.hidden = true;
    container.append(this.canvas, this.popup);
    this.renders = 0;
    this._bind();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();
  }

  // Loading -----------------------------------------------------------------------------------------------------

  async loadLayer(level) {
    if (!layerCache.has(level)) {
      const origin = this.origin;
      const promise = this.api(`/staff/v1/map/boundaries/${level}`).then((fc) => buildLayer(fc, origin));
      layerCache.set(level, promise);
      promise.catch(() => layerCache.delete(level));
    }
    this.layers[level] = await layerCache.get(level);
    return this.layers[level];
  }

  async load({ fit = true } = {}) {
    const wanted = ["district", "street", "grid"].filter((level) => this.show[level + "s"]);
    const jobs = wanted.map((level) => this.loadLayer(level));
    if (this.show.cases) jobs.push(this.reloadCases({ draw: false }));
    await Promise.all(jobs);
    // Measured now: the container may not have been on the page when the map was made.
    this.resize();
    if (fit) {
      this.fitCity();
      this.autoFit = true;
    }
    this.renderBase();
    this.compose();
  }

  async reloadCases({ draw = true } = {}) {
    // One request at a time: a slow answer must not land after a newer one.
    if (this.casesLoading) return this.casesLoading;
    this.casesLoading = this.api("/staff/v1/map/cases").finally(() => {
      this.casesLoading = null;
    });
    const data = await this.casesLoading;
    this.casesAt = Date.now();
    const at = Object.fromEntries(data.fields.map((f, i) => [f, i]));
    const k = 2 ** BASE_ZOOM;
    this.cases = data.rows.map((row) => {
      const [x, y] = mercator(row[at.lon], row[at.lat]);
      return {
        number: row[at.number],
        status: row[at.status],
        overdue: Boolean(row[at.overdue]),
        subclass: row[at.subclass],
        x: (x - this.origin[0]) * k,
        y: (y - this.origin[1]) * k,
      };
    });
    this.caseTotals = { total: data.total, overdue: this.cases.filter((c) => c.overdue).length };
    if (draw) this.compose();
    this.container.dispatchEvent(new CustomEvent("cases", { detail: this.caseTotals }));
    return this.cases;
  }

  async loadHeat(subclass, days = 30) {
    const query = new URLSearchParams({ days: String(days) });
    if (subclass) query.set("subclass", subclass);
    const asked = (this.heatAsked = (this.heatAsked || 0) + 1);
    const data = await this.api(`/staff/v1/map/heat?${query}`);
    if (asked !== this.heatAsked) return data; // a later choice is on its way
    const k = 2 ** BASE_ZOOM;
    this.heat = {
      max: data.max || 1,
      points: data.points.map(([lon, lat, n]) => {
        const [x, y] = mercator(lon, lat);
        return [(x - this.origin[0]) * k, (y - this.origin[1]) * k, n];
      }),
    };
    this.renderBase();
    this.compose();
    return data;
  }

  // View --------------------------------------------------------------------------------------------------------

  fitCity() {
    const layer = this.layers.district || this.layers.street || this.layers.grid;
    if (!layer) return;
    const [x0, y0, x1, y1] = layer.bounds;
    if (!(x1 > x0 && y1 > y0)) return;
    const scale = Math.min(this.width / (x1 - x0), this.height / (y1 - y0)) * 0.95;
    this.view = { x: (x0 + x1) / 2, y: (y0 + y1) / 2, scale };
    this.home = { ...this.view };
  }

  focus(lon, lat, zoom = 15) {
    const [x, y] = mercator(lon, lat);
    const k = 2 ** BASE_ZOOM;
    this.view = { x: (x - this.origin[0]) * k, y: (y - this.origin[1]) * k, scale: 2 ** (zoom - BASE_ZOOM) };
    this.home = { ...this.view };
  }

  setMarker(lon, lat) {
    const [x, y] = mercator(lon, lat);
    const k = 2 ** BASE_ZOOM;
    this.marker = { x: (x - this.origin[0]) * k, y: (y - this.origin[1]) * k };
  }

  get zoom() {
    return BASE_ZOOM + Math.log2(this.view.scale);
  }

  toScreen(x, y, view = this.view) {
    return [(x - view.x) * view.scale + this.width / 2, (y - view.y) * view.scale + this.height / 2];
  }

  zoomBy(factor, sx = this.width / 2, sy = this.height / 2) {
    this.autoFit = false;
    const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, this.zoom + Math.log2(factor)));
    const scale = 2 ** (zoom - BASE_ZOOM);
    // Keep the point under the cursor where it is.
    const wx = (sx - this.width / 2) / this.view.scale + this.view.x;
    const wy = (sy - this.height / 2) / this.view.scale + this.view.y;
    this.view = { x: wx - (sx - this.width / 2) / scale, y: wy - (sy - this.height / 2) / scale, scale };
    this.compose();
    this.settle();
  }

  panBy(dx, dy) {
    this.autoFit = false;
    this.view = { ...this.view, x: this.view.x - dx / this.view.scale, y: this.view.y - dy / this.view.scale };
    this.compose();
    this.settle();
  }

  reset() {
    this.view = { ...this.home };
    this.renderBase();
    this.compose();
  }

  setLayer(name, visible) {
    this.show[name] = visible;
    const level = { districts: "district", streets: "street", grids: "grid" }[name];
    if (visible && level && !this.layers[level]) {
      this.loadLayer(level).then(() => {
        this.renderBase();
        this.compose();
      });
      return;
    }
    this.renderBase();
    this.compose();
  }

  settle() {
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.renderBase();
      this.compose();
    }, 120);
  }

  resize() {
    const rect = this.container.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, Math.round(rect.width));
    this.height = Math.max(1, Math.round(rect.height));
    this.dpr = dpr;
    for (const c of [this.canvas, this.base]) {
      c.width = Math.round(this.width * dpr);
      c.height = Math.round(this.height * dpr);
    }
    this.canvas.style.width = `${this.width}px`;
    this.canvas.style.height = `${this.height}px`;
    // Until someone moves the map, it keeps the whole city in view whatever the window's size.
    if (this.autoFit) this.fitCity();
    if (this.baseView) {
      this.renderBase();
      this.compose();
    }
  }

  // Drawing -----------------------------------------------------------------------------------------------------

  renderBase() {
    const ctx = this.base.getContext("2d");
    const { scale } = this.view;
    const dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#eef1f4";
    ctx.fillRect(0, 0, this.base.width, this.base.height);
    if (this.tilesUrl) this.drawTiles(ctx);
    ctx.setTransform(
      dpr * scale,
      0,
      0,
      dpr * scale,
      dpr * (this.width / 2 - this.view.x * scale),
      dpr * (this.height / 2 - this.view.y * scale),
    );
    const z = this.zoom;
    if (this.layers.district && this.show.districts) {
      ctx.fillStyle = this.tilesUrl ? "rgba(255,255,255,0.35)" : "#fbfcfd";
      ctx.fill(this.layers.district.path, "evenodd");
    }
    if (this.layers.grid && this.show.grids) {
      // At the city view a grid is 3–4 pixels wide: a faint mesh; from street level on, clear lines.
      ctx.lineWidth = (z < 13 ? 0.4 : 0.8) / scale;
      ctx.strokeStyle = z < 13 ? "rgba(90,110,130,0.16)" : "rgba(90,110,130,0.45)";
      ctx.stroke(this.layers.grid.path);
    }
    if (this.layers.street && this.show.streets) {
      ctx.lineWidth = 1 / scale;
      ctx.strokeStyle = "#8194ab";
      ctx.stroke(this.layers.street.path);
    }
    if (this.layers.district && this.show.districts) {
      ctx.lineWidth = 2.2 / scale;
      ctx.strokeStyle = "#31465e";
      ctx.stroke(this.layers.district.path);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (this.show.heat && this.heat) this.drawHeat(ctx);
    this.drawLabels(ctx);
    this.baseView = { ...this.view };
    this.renders += 1;
  }

  drawLabels(ctx) {
    const z = this.zoom;
    const sets = [];
    // Labels follow the page's type size, which grows on large screens.
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 14;
    if (this.layers.district && this.show.districts && z < 13.5) {
      sets.push([this.layers.district.labels, `600 ${Math.round(rem * 1.05)}px`, "#22364d"]);
    }
    if (this.layers.street && this.show.streets && z >= 12.5) {
      sets.push([this.layers.street.labels, `${Math.round(rem * 0.9)}px`, "#4b5e75"]);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const [labels, font, colour] of sets) {
      ctx.font = `${font} system-ui, "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif`;
      for (const label of labels) {
        const [sx, sy] = this.toScreen(label.x, label.y);
        if (sx < -50 || sy < -20 || sx > this.width + 50 || sy > this.height + 20) continue;
        ctx.lineWidth = 3;
        ctx.strokeStyle = "rgba(255,255,255,0.85)";
        ctx.strokeText(label.name, sx, sy);
        ctx.fillStyle = colour;
        ctx.fillText(label.name, sx, sy);
      }
    }
  }

  drawHeat(ctx) {
    const w = Math.round(this.width);
    const h = Math.round(this.height);
    const shade = document.createElement("canvas");
    shade.width = w;
    shade.height = h;
    const s = shade.getContext("2d");
    const radius = Math.max(8, Math.min(40, 250 * this.view.scale));
    for (const [x, y, n] of this.heat.points) {
      const [sx, sy] = this.toScreen(x, y);
      if (sx < -radius || sy < -radius || sx > w + radius || sy > h + radius) continue;
      const g = s.createRadialGradient(sx, sy, 0, sx, sy, radius);
      g.addColorStop(0, `rgba(0,0,0,${Math.min(1, 0.15 + (0.85 * n) / this.heat.max)})`);
      g.addColorStop(1, "rgba(0,0,0,0)");
      s.fillStyle = g;
      s.fillRect(sx - radius, sy - radius, radius * 2, radius * 2);
    }
    // Colour by density: transparent blue → yellow → red.
    const image = s.getImageData(0, 0, w, h);
    const px = image.data;
    for (let i = 0; i < px.length; i += 4) {
      const a = px[i + 3] / 255;
      if (a === 0) continue;
      px[i] = Math.round(255 * Math.min(1, a * 2));
      px[i + 1] = Math.round(255 * (a < 0.5 ? a * 1.6 : 1.6 - a * 1.6));
      px[i + 2] = Math.round(255 * Math.max(0, 0.8 - a * 1.6));
      px[i + 3] = Math.round(200 * Math.min(1, a * 1.5));
    }
    s.putImageData(image, 0, 0);
    ctx.drawImage(shade, 0, 0, w, h);
  }

  drawTiles(ctx) {
    const z = Math.max(0, Math.min(MAX_ZOOM, Math.round(this.zoom)));
    const k = 2 ** (z - BASE_ZOOM);
    const size = TILE * (this.view.scale / k);
    const worldScale = 2 ** z;
    // The view's top-left corner in world pixels at zoom z.
    const left = (this.origin[0] * worldScale) + (this.view.x - this.width / 2 / this.view.scale) * k;
    const top = (this.origin[1] * worldScale) + (this.view.y - this.height / 2 / this.view.scale) * k;
    const dpr = this.dpr;
    for (let tx = Math.floor(left / TILE); tx * TILE < left + (this.width / size) * TILE; tx++) {
      for (let ty = Math.floor(top / TILE); ty * TILE < top + (this.height / size) * TILE; ty++) {
        const url = this.tilesUrl.replace("{z}", z).replace("{x}", tx).replace("{y}", ty);
        let img = this.tiles.get(url);
        if (!img) {
          img = new Image();
          img.onload = () => {
            this.renderBase();
            this.compose();
          };
          img.src = url;
          this.tiles.set(url, img);
        }
        if (img.complete && img.naturalWidth) {
          const sx = ((tx * TILE - left) / TILE) * size;
          const sy = ((ty * TILE - top) / TILE) * size;
          ctx.drawImage(img, sx * dpr, sy * dpr, size * dpr + 1, size * dpr + 1);
        }
      }
    }
  }

  compose() {
    const ctx = this.canvas.getContext("2d");
    const dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#eef1f4";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.baseView) {
      // The settled bitmap, moved and scaled to where the view is now.
      const b = this.baseView;
      const ratio = this.view.scale / b.scale;
      const [ox, oy] = this.toScreen(b.x - this.width / 2 / b.scale, b.y - this.height / 2 / b.scale);
      ctx.drawImage(this.base, ox * dpr, oy * dpr, this.base.width * ratio, this.base.height * ratio);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (this.show.cases) this.drawCases(ctx);
    if (this.marker) {
      const [mx, my] = this.toScreen(this.marker.x, this.marker.y);
      ctx.beginPath();
      ctx.moveTo(mx, my);
      ctx.arc(mx, my - 16, 8, Math.PI * 0.75, Math.PI * 2.25);
      ctx.closePath();
      ctx.fillStyle = OVERDUE_COLOUR;
      ctx.fill();
      ctx.beginPath();
      ctx.arc(mx, my - 16, 3, 0, Math.PI * 2);
      ctx.fillStyle = "#fff";
      ctx.fill();
    }
    if (this.selected) this.placePopup();
  }

  pointRadius() {
    return Math.max(2.5, Math.min(7, 1.2 * (this.zoom - 9)));
  }

  drawCases(ctx) {
    const r = this.pointRadius();
    const byColour = new Map();
    const overdue = new Path2D();
    for (const c of this.cases) {
      const [sx, sy] = this.toScreen(c.x, c.y);
      if (sx < -r || sy < -r || sx > this.width + r || sy > this.height + r) continue;
      const colour = STATUS_COLOURS[c.status] || "#444";
      if (!byColour.has(colour)) byColour.set(colour, new Path2D());
      const path = byColour.get(colour);
      path.moveTo(sx + r, sy);
      path.arc(sx, sy, r, 0, Math.PI * 2);
      if (c.overdue) {
        overdue.moveTo(sx + r + 2, sy);
        overdue.arc(sx, sy, r + 2, 0, Math.PI * 2);
      }
    }
    for (const [colour, path] of byColour) {
      ctx.fillStyle = colour;
      ctx.fill(path);
    }
    ctx.lineWidth = 2;
    ctx.strokeStyle = OVERDUE_COLOUR;
    ctx.stroke(overdue);
  }

  // Keyboard: n / p go through the open cases, overdue ones first, centring each and opening its popup.
  step(direction) {
    if (!this.cases.length) return;
    const order = [...this.cases].sort((a, b) => b.overdue - a.overdue);
    const at = order.indexOf(this.selected);
    const next = order[(at + direction + order.length) % order.length];
    this.autoFit = false;
    this.view = { ...this.view, x: next.x, y: next.y };
    this.renderBase();
    this.select(next, { focusPopup: false }); // the keys stay on the map; Enter opens the case
    this.compose();
  }

  // For tests and the benchmark: where a case is drawn, and the colour it is drawn in.
  casePoint(number) {
    const c = this.cases.find((x) => x.number === number);
    if (!c) return null;
    const [x, y] = this.toScreen(c.x, c.y);
    return { x, y, status: c.status, overdue: c.overdue, colour: STATUS_COLOURS[c.status] };
  }

  // Interaction -------------------------------------------------------------------------------------------------

  nearestCase(sx, sy) {
    const limit = this.pointRadius() + 4;
    let best = null;
    let bestD = limit * limit;
    for (const c of this.cases) {
      const [x, y] = this.toScreen(c.x, c.y);
      const d = (x - sx) ** 2 + (y - sy) ** 2;
      if (d <= bestD) {
        best = c;
        bestD = d;
      }
    }
    return best;
  }

  select(c, { focusPopup = true } = {}) {
    this.selected = c;
    if (!c) {
      this.popup.hidden = true;
      return;
    }
    this.popup.replaceChildren();
    const title = document.createElement("strong");
    title.textContent = c.number;
    const status = document.createElement("span");
    status.textContent = (this.statusNames[c.status] || c.status) + (c.overdue ? ` · ${this.text.overdue || ""}` : "");
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = this.text.open || "open";
    open.addEventListener("click", () => this.onOpenCase && this.onOpenCase(c.number));
    this.popup.append(title, status, open);
    this.popup.hidden = false;
    this.placePopup();
    if (focusPopup) open.focus();
  }

  placePopup() {
    const [x, y] = this.toScreen(this.selected.x, this.selected.y);
    this.popup.style.left = `${Math.round(x + 10)}px`;
    this.popup.style.top = `${Math.round(y + 10)}px`;
  }

  _bind() {
    let drag = null;
    this.canvas.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: false };
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true;
      this.autoFit = false;
      drag.x = e.clientX;
      drag.y = e.clientY;
      this.view = { ...this.view, x: this.view.x - dx / this.view.scale, y: this.view.y - dy / this.view.scale };
      this.compose();
    });
    this.canvas.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) {
        const rect = this.canvas.getBoundingClientRect();
        this.select(this.nearestCase(e.clientX - rect.left, e.clientY - rect.top));
      } else if (drag) {
        this.settle();
      }
      drag = null;
    });
    this.canvas.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const rect = this.canvas.getBoundingClientRect();
        this.zoomBy(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - rect.left, e.clientY - rect.top);
      },
      { passive: false },
    );
    this.canvas.addEventListener("keydown", (e) => {
      const step = 80;
      const keys = {
        ArrowLeft: () => this.panBy(step, 0),
        ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step),
        ArrowDown: () => this.panBy(0, -step),
        "+": () => this.zoomBy(1.5),
        "=": () => this.zoomBy(1.5),
        "-": () => this.zoomBy(1 / 1.5),
        0: () => this.reset(),
        n: () => this.step(1),
        p: () => this.step(-1),
        Escape: () => this.select(null),
        Enter: () => this.selected && this.onOpenCase && this.onOpenCase(this.selected.number),
      };
      if (keys[e.key]) {
        e.preventDefault();
        e.stopPropagation();
        keys[e.key]();
      }
    });
  }

  destroy() {
    clearTimeout(this.settleTimer);
    this.resizeObserver.disconnect();
  }
}
