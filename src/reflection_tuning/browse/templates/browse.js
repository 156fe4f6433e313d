// The data browser: inflate the sample records, draw the table (DataTables), the
// side-by-side view of one sample, and the plots (vega-embed). Nothing is fetched.
"use strict";

const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(4));
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const FIELDS = ["instruction", "input", "output"];

async function inflate(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).json();
}

// The reflection's text: the "=" and "+" segments of its diff against the original.
const newText = (segments) => segments.filter(([op]) => op !== "-").map(([, t]) => t).join("");

function searchText(r) {
  if (r._text === undefined) {
    const parts = FIELDS.map((f) => r.original[f]);
    for (const v of RT_VARIANTS) {
      const d = r.v[v] && r.v[v].diff;
      if (d) for (const f of FIELDS) parts.push(newText(d[f]));
      if (r.v[v] && r.v[v].note) parts.push(r.v[v].note);
    }
    r._text = parts.join(" \n ");
  }
  return r._text;
}

function scoreColumn(variant, key) {
  return {
    title: `${key === "ifd" ? "IFD" : "r-IFD"} ${variant}`, type: "num", className: "dt-right",
    data: (r) => r.v[variant][key],
    render: (d, type) => (type === "display" ? fmt(d) : type === "sort" || type === "type" ? (d ?? -1e308) : (d ?? "")),
  };
}

function buildTable(records) {
  const columns = [
    { title: "id", data: "id", render: (d, type) => (type === "display" ? `<code>${esc(d.slice(0, 8))}</code>` : d) },
    { title: "instruction", className: "text", data: (r) => r.original.instruction,
      render: (d, type, r) => (type === "filter" ? searchText(r) : type === "display" ? esc(d) : d) },
    { title: "branch", data: "branch" },
    { title: "kept", data: (r) => r.kept ?? "(none)" },
  ];
  for (const v of RT_VARIANTS) columns.push(scoreColumn(v, "ifd"), scoreColumn(v, "rifd"));
  // hidden: the statuses of the reflections (truncated, repetitive, copy, …), for the status filter
  const reflectionStatuses = (r) => RT_VARIANTS.filter((v) => v !== "original").map((v) => r.v[v].status);
  columns.push({ title: "statuses", data: (r) => reflectionStatuses(r).join(" "), visible: false });
  const table = new DataTable("#samples", {
    data: records, columns, deferRender: true, pageLength: 25, order: [[0, "asc"]],
    lengthMenu: [10, 25, 100, 500], language: { search: "Search text:" },
  });
  const exact = (col, value) => table.column(col).search(value ? `^${DataTable.util.escapeRegex(value)}$` : "", true, false).draw();
  const branches = [...new Set(records.map((r) => r.branch))].sort();
  const select = document.getElementById("filter-branch");
  for (const b of branches) select.add(new Option(`${b} (${records.filter((r) => r.branch === b).length})`, b));
  select.addEventListener("change", (e) => exact(2, e.target.value));
  document.getElementById("filter-kept").addEventListener("change", (e) => exact(3, e.target.value));
  const statusCol = columns.length - 1;
  const statusSelect = document.getElementById("filter-status");
  const statuses = [...new Set(records.flatMap(reflectionStatuses))].sort();
  for (const s of statuses) {
    const n = records.filter((r) => reflectionStatuses(r).includes(s)).length;
    statusSelect.add(new Option(`${s} (${n})`, s));
  }
  statusSelect.addEventListener("change", (e) => {
    const v = e.target.value;
    table.column(statusCol).search(v ? `(^| )${DataTable.util.escapeRegex(v)}( |$)` : "", true, false).draw();
  });
  table.on("click", "tbody tr", function () {
    const r = table.row(this).data();
    if (!r) return;
    document.querySelectorAll("tr.selected-sample").forEach((tr) => tr.classList.remove("selected-sample"));
    this.classList.add("selected-sample");
    showDetail(r);
  });
  return table;
}

function renderDiff(segments) {
  return segments.map(([op, t]) => (op === "=" ? esc(t) : op === "-" ? `<del>${esc(t)}</del>` : `<ins>${esc(t)}</ins>`)).join("");
}

function showDetail(r) {
  document.getElementById("detail-id").textContent = r.id;
  document.getElementById("detail-branch").textContent = `branch ${r.branch}; kept ${r.kept ?? "nothing"}`;
  const html = RT_VARIANTS.map((v) => {
    const e = r.v[v];
    const ok = e.status === "ok";
    let body = "";
    if (v === "original") {
      body = FIELDS.map((f) => `<div class="label">${f}</div><div class="field">${esc(r.original[f]) || "<i>(empty)</i>"}</div>`).join("");
    } else if (e.diff) {
      body = FIELDS.map((f) => `<div class="label">${f} (changes)</div><div class="field">${renderDiff(e.diff[f]) || "<i>(empty)</i>"}</div>`).join("");
    } else {
      body = `<p><i>no text: ${esc(e.status)}</i></p>`;
    }
    const note = (e.note ? `<div class="label">teacher</div><div class="note">${esc(e.note)}</div>` : "") +
      (e.raw ? `<details><summary class="label">the teacher's reply</summary><div class="note">${esc(e.raw)}</div></details>` : "");
    return `<div class="variant${r.kept === v ? " kept" : ""}" data-variant="${v}"><h3>${v}${r.kept === v ? " ✓ kept" : ""}</h3>` +
      `<p><span class="status ${ok ? "ok" : "bad"}">${esc(e.status)}</span> IFD ${fmt(e.ifd)} · r-IFD ${fmt(e.rifd)}</p>${body}${note}</div>`;
  }).join("");
  document.getElementById("detail-columns").innerHTML = html;
  const section = document.getElementById("detail");
  section.hidden = false;
  section.scrollIntoView({ block: "nearest" });
}

// Marks drawn by a Vega view (the browser test reads this): the items of every non-group mark.
function markCount(view) {
  let n = 0;
  const walk = (item) => {
    if (!item) return;
    if (item.marktype && item.marktype !== "group") n += (item.items || []).length;
    for (const child of item.items || []) walk(child);
  };
  walk(view.scenegraph().root);
  return n;
}

async function drawPlots(records) {
  const specs = JSON.parse(document.getElementById("rt-specs").textContent);
  const points = [];
  for (const r of records) for (const v of RT_VARIANTS) {
    const e = r.v[v];
    if (e.ifd !== null && e.rifd !== null) points.push({ id: r.id, variant: v, ifd: e.ifd, rifd: e.rifd });
  }
  window.rtViews = {};
  const box = document.getElementById("plots");
  for (const [name, spec] of Object.entries(specs)) {
    if (name === "score_ifd") spec.datasets = { ...(spec.datasets || {}), scores: points };
    const div = document.createElement("div");
    div.id = `plot-${name}`;
    box.appendChild(div);
    // canvas for large scatters: thousands of SVG nodes would slow the page down
    const renderer = name === "score_ifd" && points.length > 5000 ? "canvas" : "svg";
    const result = await vegaEmbed(div, spec, { renderer, actions: false });
    window.rtViews[name] = result.view;
  }
}

(async function main() {
  const t0 = performance.now();
  const records = await inflate(document.getElementById("rt-data").textContent.trim());
  const t1 = performance.now();
  window.rtTable = buildTable(records);
  const t2 = performance.now();
  document.getElementById("status").textContent = `${records.length} samples`;
  document.getElementById("detail-close").addEventListener("click", () => { document.getElementById("detail").hidden = true; });
  await drawPlots(records);
  window.rtTiming = { inflate_ms: t1 - t0, table_ms: t2 - t1, plots_ms: performance.now() - t2 };
  window.rtMarkCount = markCount;
  window.rtReady = true;
})().catch((e) => {
  document.getElementById("status").textContent = `error: ${e}`;
  window.rtError = String(e);
  throw e;
});
