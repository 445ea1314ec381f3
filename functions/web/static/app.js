// geoexport web tool: sign in, choose a product on the map, define a region, see the estimate, export,
// follow "My exports" and download. Plain browser JavaScript over the same API (relative URLs), no build.
"use strict";

const ZOOM0 = 0.703125; // deg/px of WorldCRS84Quad's zoom 0: the API's zoom rule
const $ = (id) => document.getElementById(id);
const url = (path) => new URL(path, document.baseURI).href;
const state = {
  token: sessionStorage.getItem("geoexport.token"), records: [], record: null, roi: null, draw: null, exportsShown: "",
  regions: [], // drawn or uploaded parts of the ROI, each with its own zoom: {id, geometry, zoom}
  preview: null, // the export whose quicklook the map shows
};
let regionCount = 0;

function say(text, error = false) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

// -- the API -------------------------------------------------------------------------------------------
class ApiError extends Error {}

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const answer = text ? JSON.parse(text) : {};
  if (response.status === 401 && state.token) signOut("Your session ended: sign in again.");
  if (!response.ok) {
    const details = (answer.errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ");
    throw new ApiError(`${response.status} ${answer.message || ""}${details ? ` (${details})` : ""}`);
  }
  return answer;
}

// -- signing in (the token lives in this tab only) ------------------------------------------------------
async function signIn(event) {
  event.preventDefault();
  try {
    state.token = null;
    const answer = await call("POST", "auth/token", { client_id: $("client-id").value, client_secret: $("client-secret").value });
    state.token = answer.access_token;
    sessionStorage.setItem("geoexport.token", state.token);
    $("client-secret").value = "";
    await signedIn();
  } catch (error) {
    say(`Sign-in refused: ${error.message}`, true);
  }
}

function signOut(text = "Signed out.") {
  state.token = null;
  sessionStorage.removeItem("geoexport.token");
  $("signin").hidden = false;
  $("signed-in").hidden = true;
  $("submit").disabled = true;
  state.exportsShown = "";
  $("exports").tBodies[0].replaceChildren();
  say(text);
}

async function signedIn() {
  $("signin").hidden = true;
  $("signed-in").hidden = false;
  say("Signed in. Choose a product, then draw or paste a region.");
  await loadRecords();
  await refreshExports();
}

// -- the map ---------------------------------------------------------------------------------------------
const map = new maplibregl.Map({
  container: "map",
  style: {
    version: 8,
    sources: { countries: { type: "geojson", data: url("static/countries.geojson"), attribution: "Natural Earth" } },
    layers: [
      { id: "sea", type: "background", paint: { "background-color": "#cfe3f2" } },
      { id: "land", type: "fill", source: "countries", paint: { "fill-color": "#f1efe6" } },
      { id: "borders", type: "line", source: "countries", paint: { "line-color": "#8a8a8a", "line-width": 0.6 } },
    ],
  },
  center: [-40, 25],
  zoom: 1.3,
  canvasContextAttributes: { preserveDrawingBuffer: true }, // lets tests read pixels
});
map.addControl(new maplibregl.NavigationControl(), "top-right");
window.geoexportMap = map;

map.on("load", () => {
  map.addSource("footprints", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "footprints-fill", type: "fill", source: "footprints", paint: { "fill-color": "#2a6fdb", "fill-opacity": 0.15 } });
  map.addLayer({ id: "footprints-line", type: "line", source: "footprints", paint: { "line-color": "#2a6fdb", "line-width": 2 } });
  map.addLayer({ id: "selected-line", type: "line", source: "footprints", filter: ["==", ["get", "id"], ""], paint: { "line-color": "#e4572e", "line-width": 3 } });
  map.addSource("features", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "features-fill", type: "fill", source: "features", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#6a3d9a", "fill-opacity": 0.3 } });
  map.addLayer({ id: "features-line", type: "line", source: "features", filter: ["!=", ["geometry-type"], "Point"], paint: { "line-color": "#6a3d9a", "line-width": 2 } });
  map.addLayer({ id: "features-point", type: "circle", source: "features", filter: ["==", ["geometry-type"], "Point"], paint: { "circle-color": "#6a3d9a", "circle-radius": 5, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } });
  map.addSource("roi", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "roi-fill", type: "fill", source: "roi", paint: { "fill-color": "#f90", "fill-opacity": 0.25 } });
  map.addLayer({ id: "roi-line", type: "line", source: "roi", paint: { "line-color": "#c60", "line-width": 2 } });
  const { TerraDraw, TerraDrawRectangleMode, TerraDrawPolygonMode } = terraDraw;
  const { TerraDrawMapLibreGLAdapter } = terraDrawMaplibreGlAdapter;
  state.draw = new TerraDraw({
    adapter: new TerraDrawMapLibreGLAdapter({ map }),
    modes: [new TerraDrawRectangleMode(), new TerraDrawPolygonMode()],
  });
  state.draw.start();
  state.draw.on("finish", (id) => {
    const drawn = state.draw.getSnapshot().find((feature) => feature.id === id);
    addRegions([{ id, geometry: drawn.geometry }]);
  });
  document.body.dataset.mapReady = "true";
  if (state.token) signedIn();
});

for (const button of document.querySelectorAll("#draw-tools button")) {
  button.addEventListener("click", () => {
    const mode = button.dataset.mode;
    if (!state.draw) return;
    if (mode === "clear") {
      state.draw.clear();
      state.draw.setMode("static");
      state.regions = [];
      showRegions();
      setRoi(null, "");
    } else {
      state.draw.setMode(mode);
      say(mode === "rectangle" ? "Click two corners on the map." : "Click the corners; click the first one again to close.");
    }
    for (const other of document.querySelectorAll("#draw-tools button")) other.setAttribute("aria-pressed", String(other === button && mode !== "clear"));
  });
}

// -- products --------------------------------------------------------------------------------------------
async function loadRecords() {
  state.records = (await call("GET", "catalog/records")).records;
  map.getSource("footprints").setData({
    type: "FeatureCollection",
    features: state.records.map((r) => ({ type: "Feature", geometry: r.footprint, properties: { id: r.id, name: r.name } })),
  });
  const list = $("records");
  list.replaceChildren();
  for (const record of state.records) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.record = record.name;
    button.textContent = `${record.name} (${record.domain}, ${record.maxResolutionDeg.toPrecision(3)} deg/px, ${record.crs})`;
    button.addEventListener("click", () => selectRecord(record));
    item.append(button);
    list.append(item);
  }
}

function selectRecord(record) {
  state.record = record;
  for (const button of document.querySelectorAll("#records button")) button.setAttribute("aria-pressed", String(button.dataset.record === record.name));
  map.setFilter("selected-line", ["==", ["get", "id"], record.id]);
  const ring = record.footprint.type === "Polygon" ? record.footprint.coordinates[0] : record.footprint.coordinates.flat(1)[0];
  const xs = ring.map((p) => p[0]);
  const ys = ring.map((p) => p[1]);
  map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]], { padding: 40, duration: 0 });
  const finest = Math.floor(Math.log2(ZOOM0 / record.maxResolutionDeg) + 1e-9);
  $("zoom").max = String(Math.max(0, Math.min(21, finest)));
  if (Number($("zoom").value) > finest) $("zoom").value = String(Math.max(0, finest));
  $("submit").disabled = false;
  say(`${record.name}: draw or paste a region inside the outlined footprint.`);
  estimate();
}

// -- the region of interest --------------------------------------------------------------------------------
function showRoi(roi) {
  const source = map.getSource("roi");
  if (!source) return;
  const shapes = ["Polygon", "MultiPolygon", "Feature", "FeatureCollection"];
  const drawable = roi && typeof roi === "object" && shapes.includes(roi.type);
  source.setData(drawable ? roi : { type: "FeatureCollection", features: [] });
}

function setRoi(geometry, text) {
  state.roi = geometry;
  showRoi(geometry);
  $("roi-text").value = text;
  $("roi-country").value = "";
  estimate();
}

// Several parts, each with its own zoom (the API's per-feature maxResolutionDeg): drawn ones and the features
// of an uploaded file are listed; each part's zoom starts at the zoom chosen under Output.
function regionsRoi() {
  return {
    type: "FeatureCollection",
    features: state.regions.map((r) => ({ type: "Feature", geometry: r.geometry, properties: { maxResolutionDeg: ZOOM0 / 2 ** r.zoom } })),
  };
}

function addRegions(parts) {
  for (const part of parts) state.regions.push({ id: part.id ?? `upload-${++regionCount}`, geometry: part.geometry, zoom: part.zoom ?? Number($("zoom").value) });
  showRegions();
  useRegions();
}

function useRegions() {
  if (!state.regions.length) return setRoi(null, "");
  const roi = regionsRoi();
  setRoi(roi, JSON.stringify(roi));
}

function degrees(zoom) {
  return `${(ZOOM0 / 2 ** zoom).toPrecision(4)} deg/px`;
}

function showRegions() {
  const list = $("regions");
  list.hidden = !state.regions.length;
  list.replaceChildren(...state.regions.map((region, index) => {
    const item = document.createElement("li");
    const label = document.createElement("label");
    const zoom = document.createElement("input");
    zoom.type = "number";
    zoom.min = "0";
    zoom.max = $("zoom").max;
    zoom.value = String(region.zoom);
    const shown = document.createElement("span");
    shown.textContent = ` = ${degrees(region.zoom)}`;
    zoom.addEventListener("input", () => {
      if (zoom.value === "" || !Number.isInteger(Number(zoom.value))) return;
      region.zoom = Number(zoom.value);
      shown.textContent = ` = ${degrees(region.zoom)}`;
      useRegions(); // the list stays as it is: the focus stays in this field
    });
    label.append(`Zoom of region ${index + 1} (${region.geometry.type}) `, zoom, shown);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = `Remove region ${index + 1}`;
    remove.addEventListener("click", () => {
      state.regions = state.regions.filter((r) => r !== region);
      if (state.draw && state.draw.getSnapshot().some((f) => f.id === region.id)) state.draw.removeFeatures([region.id]);
      showRegions();
      useRegions();
    });
    item.append(label, remove);
    return item;
  }));
}

function zoomOf(resolution) {
  return Math.max(0, Math.round(Math.log2(ZOOM0 / resolution)));
}

function partsOf(geojson) {
  const features = geojson.type === "FeatureCollection" ? geojson.features : geojson.type === "Feature" ? [geojson] : [{ geometry: geojson, properties: {} }];
  return features.map((f) => ({ geometry: f.geometry, zoom: f.properties && f.properties.maxResolutionDeg ? zoomOf(f.properties.maxResolutionDeg) : undefined }));
}

function forgetRegions() {
  state.regions = [];
  showRegions();
  if (state.draw) state.draw.clear();
}

function roiFromText(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  if (trimmed.startsWith("{")) return JSON.parse(trimmed); // GeoJSON: the API checks it
  return trimmed; // WKT: the API reads it (and says what is wrong)
}

$("roi-text").addEventListener("input", () => {
  try {
    state.roi = roiFromText($("roi-text").value);
    forgetRegions(); // the text, as typed, is the region now (a FeatureCollection may carry its own zooms)
    showRoi(state.roi);
    estimate();
  } catch (error) {
    $("estimate").textContent = `The region is not JSON: ${error.message}`;
    $("estimate").className = "error";
  }
});

$("roi-file").addEventListener("change", async () => {
  const file = $("roi-file").files[0];
  if (!file) return;
  try {
    const parts = partsOf(JSON.parse(await file.text()));
    forgetRegions();
    addRegions(parts);
  } catch (error) {
    say(`${file.name} is not GeoJSON: ${error.message}`, true);
  }
});

fetch(url("static/countries.geojson"))
  .then((response) => response.json())
  .then((countries) => {
    const names = countries.features.map((f) => f.properties.name).filter(Boolean).sort();
    for (const name of names) $("roi-country").append(new Option(name, name));
  });

$("roi-country").addEventListener("change", () => {
  const name = $("roi-country").value;
  if (!name) return;
  state.roi = { country: name };
  $("roi-text").value = "";
  forgetRegions();
  showRoi(null);
  estimate();
});

// -- the request and its estimate -------------------------------------------------------------------------
function request() {
  const zoom = Number($("zoom").value);
  const body = {
    catalogRecordID: state.record.id,
    domain: state.record.domain,
    maxResolutionDeg: ZOOM0 / 2 ** zoom,
    format: $("format").value,
    packer: $("packer").value,
    description: $("description").value,
  };
  if ($("format").value === "GTiff") body.artifactCRS = $("crs").value || "4326";
  if (state.roi) body.ROI = state.roi;
  return body;
}

function showResolution() {
  const zoom = Number($("zoom").value);
  const deg = ZOOM0 / 2 ** zoom;
  $("resolution").textContent = `zoom ${zoom} = ${deg.toPrecision(4)} deg/px (about ${Math.round(deg * 111320)} m at the equator)`;
}

let pending = null;
function estimate() {
  showResolution();
  clearTimeout(pending);
  pending = setTimeout(runEstimate, 300);
}

async function runEstimate() {
  if (!state.token || !state.record) return;
  const target = $("estimate");
  try {
    const dry = await call("POST", "export-tasks?dryRun=true", request());
    const mb = (dry.estimatedSize / 1024 / 1024).toFixed(1);
    target.textContent = `Estimate: ${dry.tiles} tiles, ${mb} MB, about ${Math.round(dry.estimatedTime)} s. ` +
      `Fits in storage: ${dry.fitsInStorage ? "yes" : "no"} (${(dry.freeBytes / 1024 ** 3).toFixed(1)} GB free). ` +
      `Limits per export: ${dry.maxTiles.toLocaleString("en")} tiles, ${(dry.maxBytes / 1024 ** 3).toFixed(1)} GB.`;
    target.className = "";
  } catch (error) {
    target.textContent = `Refused: ${error.message}`;
    target.className = "error";
  }
}

for (const id of ["zoom", "format", "crs", "packer"]) $(id).addEventListener("input", estimate);

$("order").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.record) return say("Choose a product first.", true);
  try {
    const task = await call("POST", "export-tasks", request());
    say(`Export ${task.id} ${task.isDuplicated ? "answered by an identical export" : "accepted"}: ${task.status}.`);
    await refreshExports();
  } catch (error) {
    say(`Refused: ${error.message}`, true);
  }
});

// -- my features (seed 004's repository): what is in view, and a VECTOR export of it ------------------------
function viewBox() {
  const b = map.getBounds();
  const clamp = (v, low, high) => Math.max(low, Math.min(high, v));
  return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)];
}

$("features-show").addEventListener("click", async () => {
  const [w, s, e, n] = viewBox();
  const found = [];
  let token = null;
  try {
    do { // at most 5 pages of 100: a map shows a sample, the export takes them all
      const page = await call("GET", `features?bbox=${w},${s},${e},${n}&limit=100${token ? `&nextToken=${encodeURIComponent(token)}` : ""}`);
      found.push(...page.items.filter((f) => f.geometry));
      token = page.nextToken;
    } while (token && found.length < 500);
  } catch (error) {
    return say(`Cannot list your features: ${error.message}`, true);
  }
  map.getSource("features").setData({ type: "FeatureCollection", features: found.map((f) => ({ type: "Feature", geometry: f.geometry, properties: { urn: f.urn, model: f.model } })) });
  $("features-count").textContent = `${found.length}${token ? "+" : ""} feature${found.length === 1 ? "" : "s"} in view.`;
});

$("features-export").addEventListener("click", async () => {
  const [w, s, e, n] = viewBox();
  const body = {
    domain: "VECTOR",
    ROI: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
    description: $("description").value || "features in view",
  };
  try {
    const task = await call("POST", "export-tasks", body);
    say(`Feature export ${task.id} accepted: ${task.status}.`);
    await refreshExports();
  } catch (error) {
    say(`Refused: ${error.message}`, true);
  }
});

// -- my exports ------------------------------------------------------------------------------------------
async function refreshExports() {
  if (!state.token) return;
  let page;
  try {
    page = await call("GET", "export-tasks?limit=20");
  } catch (error) {
    return say(`Cannot list your exports: ${error.message}`, true);
  }
  // Redrawn only when a status or progress moved: a redraw every poll would take the keyboard focus away
  // from the table's buttons and links (links minted at the last change stay valid for their lifetime).
  const signature = page.items.map((t) => `${t.id}:${t.status}:${t.progress}`).join(",");
  if (signature === state.exportsShown) return;
  state.exportsShown = signature;
  $("exports").tBodies[0].replaceChildren(...page.items.map(row));
}

function row(task) {
  const tr = document.createElement("tr");
  tr.dataset.task = task.id;
  tr.dataset.status = task.status;
  const name = document.createElement("td");
  name.textContent = `${task.description || task.id.slice(0, 8)} (${task.format})`;
  const status = document.createElement("td");
  status.textContent = `${task.status} ${task.progress}%${task.errorReason ? `: ${task.errorReason}` : ""}`;
  const files = document.createElement("td");
  for (const artifact of task.artifacts || []) {
    if (!artifact.url) continue;
    const link = document.createElement("a");
    link.href = artifact.url;
    link.textContent = artifact.name;
    link.dataset.type = artifact.type;
    link.download = artifact.name;
    files.append(link, document.createElement("br"));
  }
  const actions = document.createElement("td");
  if (task.status === "COMPLETED" && (task.artifacts || []).some((a) => a.type === "QUICKLOOK")) {
    const preview = document.createElement("button");
    preview.type = "button";
    preview.dataset.preview = task.id;
    const shown = state.preview === task.id;
    preview.textContent = shown ? "Hide preview" : "Show on map";
    preview.setAttribute("aria-pressed", String(shown));
    preview.addEventListener("click", () => togglePreview(task.id));
    actions.append(preview);
  }
  const log = document.createElement("button");
  log.type = "button";
  log.textContent = "Log";
  log.addEventListener("click", () => showLog(task.id));
  actions.append(log);
  if (task.status === "PENDING" || task.status === "IN_PROGRESS" || task.status === "PAUSED") {
    const abort = document.createElement("button");
    abort.type = "button";
    abort.textContent = "Abort";
    abort.addEventListener("click", async () => {
      try {
        await call("POST", `export-tasks/${task.id}/abort`);
        await refreshExports();
      } catch (error) {
        say(`Cannot abort: ${error.message}`, true);
      }
    });
    actions.append(abort);
  }
  tr.append(name, status, files, actions);
  return tr;
}

// -- the quicklook of a finished raster export, overlaid on the map (the PNG comes inline from the API, so
// the page loads nothing from the bucket's origin) ---------------------------------------------------------
function hidePreview() {
  if (map.getLayer("quicklook")) map.removeLayer("quicklook");
  if (map.getSource("quicklook")) map.removeSource("quicklook");
  state.preview = null;
}

async function togglePreview(id) {
  const showing = state.preview === id;
  hidePreview();
  if (!showing) {
    try {
      const look = await call("GET", `export-tasks/${id}/quicklook`);
      map.addSource("quicklook", { type: "image", url: look.dataUrl, coordinates: look.coordinates });
      map.addLayer({ id: "quicklook", type: "raster", source: "quicklook", paint: { "raster-fade-duration": 0 } }, "footprints-line");
      const [w, s, e, n] = look.bounds;
      map.fitBounds([[w, s], [e, n]], { padding: 40, duration: 0 });
      state.preview = id;
      say(`Preview of export ${id.slice(0, 8)} on the map (${look.width} x ${look.height} px).`);
    } catch (error) {
      say(`No preview: ${error.message}`, true);
    }
  }
  for (const button of document.querySelectorAll("#exports button[data-preview]")) {
    const shown = button.dataset.preview === state.preview;
    button.textContent = shown ? "Hide preview" : "Show on map";
    button.setAttribute("aria-pressed", String(shown));
  }
}

async function showLog(id) {
  const log = await call("GET", `export-tasks/${id}/log`);
  $("log").hidden = false;
  $("log").textContent = log.entries.map((e) => `${e.time}  ${e.type}  ${e.message}`).join("\n");
}

setInterval(refreshExports, 2000);
$("signin").addEventListener("submit", signIn);
$("signout").addEventListener("click", () => signOut());
showResolution();
