// The artifacts page. Everything the store holds is someone else's data: it is only ever put into
// the page as text (textContent, attribute values), never as markup.
'use strict';

const PAGE = 500;          // rows rendered at once; "Show more" adds the next page
const PREVIEW_LINES = 200; // lines of a text artifact shown
const PREVIEW_ROWS = 100;  // rows of a csv artifact shown

const state = {
  runs: [], runLimit: PAGE, run: null, experiments: [], selectedExps: new Set(), sort: null,
  artifacts: [], artifactLimit: PAGE, selected: new Set(), cache: new Map(), metrics: new Map(), chartColumn: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function api(url, options = {}) {
  const res = await fetch(url, { credentials: 'same-origin', ...options });
  const body = res.headers.get('content-type')?.startsWith('application/json') ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error || `${res.status} ${res.statusText}`);
  return body;
}

// Sizes as the cmdlets write them (SizeText): 1,024-based, one decimal at most, 3 MiB, 195.3 KiB.
function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : Math.round(n * 10) / 10) + ' ' + units[i];
}

const pad = (n) => String(n).padStart(2, '0');
function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const status = (s) => el('span', { class: `status ${s}`, text: s });
// Beside an experiment's status, how it ended: the signal that stopped it, a non-zero exit code, or that its
// cluster task ended before it started (the scheduler's whole reason is the title).
function ending(x) {
  const short = x.signal || (x.exitCode ? `exit ${x.exitCode}` : x.reason ? 'before start' : null);
  return short ? el('span', { class: 'ending', text: short, title: x.reason }) : null;
}
// Beside a cluster run's status, its scheduler's job.
const job = (r) => (r.job ? el('span', { class: 'ending', text: `${r.scheduler} ${r.job}`,
  title: `${r.scheduler} job ${r.job}${r.cluster ? ` on cluster ${r.cluster}` : ''}` }) : null);
const key = (a) => `${a.exp}\u0000${a.path}`;
const query = (a, extra) => new URLSearchParams({ run: a.run, exp: a.exp, path: a.path, ...extra }).toString();

function toast(text, link) {
  $('toast-text').textContent = text;
  const input = $('toast-link');
  input.hidden = !link;
  input.value = link || '';
  $('toast').hidden = false;
  if (link) input.select();
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { $('toast').hidden = true; }, link ? 20000 : 6000);
}

// ---- location hash: #run=NAME&exp=exp0,exp1 -----------------------------------------------------

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  return { run: p.get('run'), exps: (p.get('exp') || '').split(',').filter(Boolean) };
}

function hashOf(run, exps) {
  const p = new URLSearchParams();
  if (run) p.set('run', run);
  if (exps.length) p.set('exp', exps.join(','));
  return '#' + p.toString();
}

// A run opened by a click is a new step in the history (back returns to the run before); ticking
// experiments only rewrites the current step.
function writeHash(push) {
  const hash = hashOf(state.run, [...state.selectedExps]);
  if (hash === location.hash) return;
  if (push) history.pushState(null, '', hash); else history.replaceState(null, '', hash);
}

// The address changed under the page (typed, a bookmark, back or forward): show what it names.
function followHash() {
  const { run, exps } = readHash();
  if (hashOf(run, exps) === hashOf(state.run, [...state.selectedExps])) return;
  if (!run) { clearRun(); return; }
  if (run !== state.run) { selectRun(run, exps); return; }
  state.selectedExps = new Set(exps);
  selectionChanged();
}

function clearRun() {
  state.run = null;
  state.selectedExps = new Set();
  state.experiments = [];
  state.artifacts = [];
  state.selected.clear();
  renderRuns();
  renderExperiments();
  $('experiments-hint').textContent = 'Choose a run.';
  $('experiments-hint').hidden = false;
  drawChart();
  renderArtifacts();
}

// ---- runs --------------------------------------------------------------------------------------

async function loadRuns(fresh) {
  if (!state.runs.length) $('active-empty').textContent = 'Loading runs…';
  $('active-empty').hidden = state.runs.length > 0;
  const [store, data] = await Promise.all([api('/api/store'), api('/api/runs' + (fresh ? '?fresh=1' : ''))]);
  $('active-empty').textContent = 'No active runs.';
  $('store').textContent = store.location;
  state.runs = data.runs;
  renderRuns();
  for (const e of data.errors) toast(e);
}

// A tag as a button that filters the runs by it.
const tagButton = (t, own) => el('button', {
  type: 'button', class: 'tag' + (own ? ' own' : ''), text: t, title: `Show the runs tagged ${t}`,
  onclick: (e) => { e.stopPropagation(); $('tag-filter').value = t; state.runLimit = PAGE; renderRuns(); },
});

function renderRuns() {
  const filter = matcher($('run-filter').value);
  const tagged = $('tag-filter').value.trim() ? tagMatcher($('tag-filter').value) : null;
  const shown = state.runs.filter((r) => filter(r.name) && (!tagged || r.tags.some(tagged)));
  const active = shown.filter((r) => r.active);
  const finished = shown.filter((r) => !r.active);
  const limit = state.runLimit;
  const row = (r) => el('tr', {
    class: 'run' + (r.name === state.run ? ' selected' : '') + (r.protected ? ' protected' : ''), dataset: { run: r.name }, tabindex: '0', title: r.command || '',
    onclick: () => selectRun(r.name, [], true),
    onkeydown: (e) => { if (e.key === 'Enter' && e.target === e.currentTarget) selectRun(r.name, [], true); },
  }, el('td', {}, r.name, r.protected ? el('span', { class: 'protected', text: 'protected', title: 'Protected: never removed (Unprotect-GridRun to allow it)' }) : null),
  el('td', {}, status(r.status), job(r)), el('td', { class: 'tags' }, ...r.tags.map((t) => tagButton(t))),
  el('td', { class: 'when', text: when(r.created) }), el('td', { class: 'num', text: r.experiments, title: `${size(r.bytes)} of artifacts` }));
  $('active-runs').replaceChildren(...active.slice(0, limit).map(row));
  $('finished-runs').replaceChildren(...finished.slice(0, limit).map(row));
  $('active-empty').hidden = active.length > 0;
  $('finished-empty').hidden = finished.length > 0;
  $('more-runs').hidden = active.length <= limit && finished.length <= limit;
}

async function selectRun(name, exps, push) {
  const another = name !== state.run;
  state.run = name;
  state.selectedExps = new Set(exps);
  writeHash(push && another);
  state.experiments = [];
  state.artifacts = [];
  state.selected.clear();
  renderRuns();
  renderArtifacts();
  $('experiments-hint').textContent = 'Loading…';
  $('experiments-hint').hidden = false;
  $('experiments-head').replaceChildren();
  $('experiments').replaceChildren();
  drawChart();
  try {
    const data = await api('/api/experiments?' + new URLSearchParams({ run: name }));
    if (state.run !== name) return;
    state.experiments = data.experiments;
    if (state.selectedExps.size === 0 && data.experiments.length === 1) state.selectedExps.add(data.experiments[0].name);
    renderExperiments();
    for (const e of data.errors) toast(e);
    drawChart();
    await loadArtifacts();
  } catch (e) {
    $('experiments-hint').textContent = e.message;
  }
}

// ---- experiments: a table of parameters and metrics, sortable by any column ----------------------

const fmt = (v, digits = 4) => (typeof v === 'number' ? String(Number(v.toPrecision(digits))) : v);
// Own keys only: a metric named "constructor" or "__proto__" is a name like any other.
const own = (o, k) => (o && Object.hasOwn(o, k) ? o[k] : undefined);
const union = (objects) => [...new Set(objects.flatMap((o) => Object.keys(o || {})))].sort((a, b) => a.localeCompare(b));

// A column's value for an experiment by its data-sort key ("param:lr", "metric:val_loss", ...); undefined when missing.
function cell(x, sortKey) {
  const at = sortKey.indexOf(':');
  const [kind, name] = at < 0 ? [sortKey, ''] : [sortKey.slice(0, at), sortKey.slice(at + 1)];
  switch (kind) {
    case 'param': return own(x.parameters, name);
    case 'metric': return own(x.metrics, name);
    case 'tags': return x.tags.length ? x.tags.join(' ') : undefined;
    default: return x[kind];
  }
}

// Numbers as numbers when both sides are finite numbers, else text with digit runs as numbers ("exp2" < "exp10").
function compare(a, b) {
  const num = (v) => (typeof v === 'number' ? v : String(v).trim() === '' ? NaN : Number(v));
  const x = num(a), y = num(b);
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function sortedExperiments() {
  const s = state.sort;
  if (!s) return state.experiments;
  const missing = (v) => v === undefined || v === null || v === '';
  return [...state.experiments].sort((p, q) => {
    const a = cell(p, s.key), b = cell(q, s.key);
    if (missing(a) || missing(b)) return missing(a) - missing(b); // missing last, in either direction
    return s.dir * compare(a, b);
  });
}

function sortBy(sortKey) {
  state.sort = state.sort?.key === sortKey ? { key: sortKey, dir: -state.sort.dir } : { key: sortKey, dir: 1 };
  renderExperiments();
}

function renderExperiments() {
  const params = union(state.experiments.map((x) => x.parameters));
  const metrics = union(state.experiments.map((x) => x.metrics));
  const columns = [
    { key: 'name', label: 'Experiment' }, { key: 'status', label: 'Status' }, { key: 'tags', label: 'Tags' },
    ...params.map((p) => ({ key: `param:${p}`, label: p, class: 'param', title: `Parameter ${p}` })),
    ...metrics.map((m) => ({ key: `metric:${m}`, label: m, class: 'metric num', title: `Metric ${m} (its last value)` })),
    { key: 'artifacts', label: 'Files', class: 'num' }, { key: 'bytes', label: 'Size', class: 'num' },
  ];
  const sorted = (key) => (state.sort?.key !== key ? 'none' : state.sort.dir > 0 ? 'ascending' : 'descending');
  $('experiments-head').replaceChildren(el('th', {}),
    ...columns.map((c) => el('th', { class: c.class, title: c.title, 'aria-sort': sorted(c.key), dataset: { sort: c.key } },
      el('button', { type: 'button', class: 'sort', text: c.label, onclick: () => sortBy(c.key) }))));
  const rows = sortedExperiments().map((x) => el('tr', { dataset: { exp: x.name } },
    el('td', {}, el('input', { type: 'checkbox', value: x.name, 'aria-label': `Select ${x.name}`, checked: state.selectedExps.has(x.name), onchange: onExperimentToggled })),
    el('td', { text: x.name, title: x.id }), el('td', {}, status(x.status), ending(x)),
    el('td', { class: 'tags' }, ...x.tags.map((t) => tagButton(t, x.ownTags.includes(t)))),
    ...params.map((p) => el('td', { class: 'param', text: cell(x, `param:${p}`) ?? '' })),
    ...metrics.map((m) => { const v = cell(x, `metric:${m}`); return el('td', { class: 'num', text: v === undefined ? '' : fmt(v), title: v === undefined ? '' : String(v) }); }),
    el('td', { class: 'num', text: x.artifacts }), el('td', { class: 'num', text: size(x.bytes) })));
  $('experiments').replaceChildren(...rows);
  $('experiments-table').hidden = state.experiments.length === 0;
  $('experiments-hint').textContent = state.experiments.length ? 'Select experiments to see their artifacts.' : 'This run has no experiments yet.';
  $('experiments-hint').hidden = state.selectedExps.size > 0;
  $('all-experiments-label').hidden = state.experiments.length < 2;
  $('all-experiments').checked = state.experiments.length > 0 && state.selectedExps.size === state.experiments.length;
}

function selectionChanged() {
  renderExperiments();
  drawChart();
  loadArtifacts();
}

function onExperimentToggled(e) {
  if (e.target.checked) state.selectedExps.add(e.target.value); else state.selectedExps.delete(e.target.value);
  selectionChanged();
}

// ---- chart: a metrics.csv column over the steps, one line per selected experiment ---------------

const SVG = 'http://www.w3.org/2000/svg';
// Sizes in CSS pixels: the plot's height follows the width within these bounds; margins around it.
const CHART = { minWidth: 280, minPlot: 180, maxPlot: 300, top: 36, right: 20, bottom: 52, colours: 8 };

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
// A <text> or <title>: names from the csv go in only as text.
const svgText = (tag, attrs, text) => { const node = svg(tag, attrs); node.textContent = text; return node; };
const label = (attrs, text) => svgText('text', attrs, text);

// The curves of one experiment, read once (a live run's are read again on each refresh).
function metricsOf(run, exp) {
  const k = `${run}\u0000${exp}`;
  if (!state.metrics.has(k)) {
    const read = api('/api/metrics?' + new URLSearchParams({ run, exp })).catch((e) => { state.metrics.delete(k); return { error: e.message }; });
    state.metrics.set(k, read);
  }
  return state.metrics.get(k);
}

// Round steps for an axis: 1, 2 or 5 times a power of ten, about `count` of them over the span.
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
}

// Tick values from lo to hi, a step apart, each a whole multiple of it (computed as one, so no 0.30000000000000004).
// At most 50: values too large for their spread to be told apart (1e17 and 1e17 + 1) get no endless loop.
function ticksOf(lo, hi, step) {
  const values = [];
  if (!(step > 0 && Number.isFinite(step))) return values;
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && values.length < 50; k++) values.push(k * step);
  return values;
}

// A tick's label: as many decimals as the step has, the same for every tick of the axis.
function tickText(value, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return decimals <= 8 && Math.abs(value) < 1e15 ? value.toFixed(decimals) : String(Number(value.toPrecision(6)));
}

// Each line's name: its experiment and the parameters that differ between the charted experiments (exp1 lr=0.01).
function lineNames(exps) {
  const records = exps.map((name) => state.experiments.find((x) => x.name === name));
  const text = (v) => (v === undefined ? undefined : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  const varying = union(records.map((x) => x?.parameters))
    .filter((p) => new Set(records.map((x) => text(own(x?.parameters, p)) ?? '\u0000')).size > 1);
  return records.map((x, i) => [exps[i], ...varying.filter((p) => own(x?.parameters, p) !== undefined)
    .map((p) => `${p}=${text(own(x.parameters, p))}`)].join(' '));
}

const chartWidth = () => Math.max(CHART.minWidth, Math.round($('chart').getBoundingClientRect().width));

async function drawChart() {
  const generation = drawChart.generation = (drawChart.generation || 0) + 1;
  const run = state.run;
  const exps = state.experiments.map((x) => x.name).filter((n) => state.selectedExps.has(n));
  const data = await Promise.all(exps.map((exp) => metricsOf(run, exp)));
  if (generation !== drawChart.generation) return; // a later selection draws instead
  const columns = [...new Set(data.flatMap((d) => d.columns || []))].sort((a, b) => a.localeCompare(b));
  const select = $('chart-column');
  if ([...select.options].map((o) => o.value).join('\u0000') !== columns.join('\u0000')) {
    select.replaceChildren(...columns.map((c) => new Option(c, c)));
  }
  const column = columns.includes(state.chartColumn) ? state.chartColumn : columns.includes('val_loss') ? 'val_loss' : columns[0];
  select.value = column ?? '';
  select.hidden = columns.length === 0; // nothing to choose: no empty list
  const chart = $('chart');
  const notes = data.flatMap((d, i) => (d.error || d.problem ? [`${exps[i]}: ${d.error || d.problem}`] : d.source ? [] : [`${exps[i]}: no metrics.csv`]));
  $('chart-hint').textContent = !exps.length ? 'Select experiments to chart the metrics.csv they wrote.'
    : !column ? `No metrics to chart. ${notes.join('; ')}` : notes.join('; ');
  $('chart-hint').hidden = !$('chart-hint').textContent;
  chart.toggleAttribute('hidden', !column);
  if (!column) { chart.replaceChildren(); return; }

  const names = lineNames(exps);
  const lines = data.map((d, i) => ({
    exp: exps[i], name: names[i], source: d.source, colour: `s${i % CHART.colours}`,
    points: (own(d.series, column) || []).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])),
  }));
  const all = lines.flatMap((l) => l.points);
  const range = (values) => {
    // A loop, not Math.min(...values): many experiments of 2,000 points each pass the limit of a call's arguments.
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
    return [lo, hi];
  };

  // Drawn in the chart's own CSS pixels (the viewBox is its size on screen), so its text is the size the style
  // sheet says at any width; a resize draws it again.
  const width = chartWidth();
  const plotHeight = Math.round(Math.min(CHART.maxPlot, Math.max(CHART.minPlot, width * 0.36)));
  const [x0, x1] = range(all.map((p) => p[0]));
  const [d0, d1] = range(all.map((p) => p[1]));
  const yStep = niceStep(d1 - d0, Math.max(3, Math.round(plotHeight / 55)));
  const [y0, y1] = [Math.floor(d0 / yStep + 1e-9) * yStep, Math.ceil(d1 / yStep - 1e-9) * yStep]; // the axis ends on ticks
  const yTicks = ticksOf(y0, y1, yStep);
  const xName = [...new Set(data.filter((d) => d.source).map((d) => d.x || 'row'))].join(' / ') || 'step';

  // Text is measured where it is drawn: the margins and the legend's rows follow from its widths.
  const yLabels = yTicks.map((v) => label({ class: 'tick y' }, tickText(v, yStep)));
  const legendItems = lines.map((l) => label({}, l.name));
  chart.setAttribute('viewBox', `0 0 ${width} ${plotHeight}`);
  chart.replaceChildren(...yLabels, ...legendItems);
  const textWidth = (t) => t.getComputedTextLength();
  const left = Math.ceil(Math.max(0, ...yLabels.map(textWidth))) + 10;
  const { top, right, bottom } = CHART;
  const plotRight = width - right;
  const xStep = niceStep(x1 - x0, Math.max(2, Math.round((plotRight - left) / 100)));
  const xTicks = ticksOf(x0, x1, xStep);
  const sx = (x) => left + ((x - x0) / (x1 - x0)) * (plotRight - left);
  const sy = (y) => top + plotHeight - ((y - y0) / (y1 - y0)) * plotHeight;

  const axes = svg('g', { class: 'axes' });
  for (const [i, v] of yTicks.entries()) {
    yLabels[i].setAttribute('x', left - 6);
    yLabels[i].setAttribute('y', sy(v) + 4);
    axes.append(svg('line', { class: 'grid', x1: left, y1: sy(v), x2: plotRight, y2: sy(v) }), yLabels[i]);
  }
  for (const v of xTicks) {
    axes.append(svg('line', { class: 'grid', x1: sx(v), y1: top, x2: sx(v), y2: top + plotHeight }),
      label({ class: 'tick x', x: sx(v), y: top + plotHeight + 16 }, tickText(v, xStep)));
  }
  axes.append(
    svg('line', { class: 'axis', x1: left, y1: top + plotHeight, x2: plotRight, y2: top + plotHeight }),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: top + plotHeight }),
    label({ class: 'axis-label x', x: (left + plotRight) / 2, y: top + plotHeight + 34 }, xName),
    label({ class: 'axis-label y', x: 0, y: top - 10 }, column));

  const series = lines.filter((l) => l.points.length)
    .map((l) => svg('polyline', { class: `series ${l.colour}`, 'data-exp': l.exp, points: l.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ') }));

  // The legend under the plot, its items in rows as wide as the chart.
  const legend = svg('g', { class: 'legend' });
  let x = left, row = 0;
  lines.forEach((l, i) => {
    const item = 28 + textWidth(legendItems[i]);
    if (x > left && x + item > plotRight) { x = left; row++; }
    const y = top + plotHeight + bottom + row * 20;
    legendItems[i].setAttribute('x', x + 28);
    legendItems[i].setAttribute('y', y + 4);
    const title = svgText('title', {}, l.points.length ? l.source : `${l.source || 'no metrics.csv'}: no values of ${column}`);
    legend.append(svg('g', { class: 'legend-item' + (l.points.length ? '' : ' missing') }, title,
      svg('line', { class: `series ${l.colour}`, x1: x, y1: y, x2: x + 20, y2: y }), legendItems[i]));
    x += item + 20;
  });
  const height = top + plotHeight + bottom + (row + 1) * 20;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  chart.replaceChildren(axes, ...series, legend);
  drawChart.width = width;
}

// ---- artifacts ---------------------------------------------------------------------------------

async function loadArtifacts() {
  writeHash(false);
  const generation = loadArtifacts.generation = (loadArtifacts.generation || 0) + 1;
  const run = state.run;
  const exps = state.experiments.map((x) => x.name).filter((n) => state.selectedExps.has(n));
  $('artifact-count').textContent = exps.length ? 'Loading…' : '';
  try {
    const lists = await Promise.all(exps.map(async (exp) => {
      const cacheKey = `${run}/${exp}`;
      if (!state.cache.has(cacheKey)) {
        const data = await api('/api/artifacts?' + new URLSearchParams({ run, exp }));
        for (const e of data.errors) toast(e);
        state.cache.set(cacheKey, data.artifacts.map((a) => ({ ...a, run, exp })));
      }
      return state.cache.get(cacheKey);
    }));
    if (state.run !== run || generation !== loadArtifacts.generation) return; // a later selection lists instead
    state.artifacts = lists.flat();
    const present = new Set(state.artifacts.map(key));
    for (const k of [...state.selected]) if (!present.has(k)) state.selected.delete(k);
    state.artifactLimit = PAGE;
    renderArtifacts();
  } catch (e) {
    $('artifact-count').textContent = e.message;
  }
}

// A filter: * and ? are wildcards; otherwise a case-insensitive substring.
// A tag filter reads as Get-GridRun -Tag does: the whole tag, or a * and ? wildcard (keep is not keeper).
function tagMatcher(text) {
  const t = text.trim().toLowerCase();
  return /[*?]/.test(t) ? matcher(t) : (s) => s.toLowerCase() === t;
}

function matcher(text) {
  const t = text.trim().toLowerCase();
  if (!t) return () => true;
  if (!/[*?]/.test(t)) return (s) => s.toLowerCase().includes(t);
  const re = new RegExp('^' + t.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&'))).join('') + '$');
  return (s) => re.test(s.toLowerCase()) || re.test(s.toLowerCase().split('/').pop());
}

function filteredArtifacts() {
  const f = matcher($('artifact-filter').value);
  return state.artifacts.filter((a) => f(a.path));
}

function renderArtifacts() {
  const shown = filteredArtifacts();
  const rows = shown.slice(0, state.artifactLimit).map(artifactRow);
  $('artifacts').replaceChildren(...rows);
  $('more-artifacts').hidden = shown.length <= state.artifactLimit;
  $('more-artifacts').textContent = `Show more (${shown.length - Math.min(shown.length, state.artifactLimit)} left)`;
  const total = state.artifacts.length;
  $('artifact-count').textContent = state.selectedExps.size === 0 ? '' :
    shown.length === total ? `${total} artifacts` : `${shown.length} of ${total} artifacts`;
  $('select-all').checked = rows.length > 0 && shown.slice(0, state.artifactLimit).every((a) => state.selected.has(key(a)));
  updateSelection();
}

function artifactRow(a) {
  const name = a.path;
  const previewable = a.kind === 'image' || a.kind === 'text';
  const thumb = a.kind === 'image'
    ? el('img', { src: '/file?' + query(a, { mode: 'inline' }), alt: '', loading: 'lazy', onclick: () => preview(a) })
    : null;
  return el('tr', { dataset: { path: a.path, exp: a.exp } },
    el('td', {}, el('input', {
      type: 'checkbox', class: 'pick', 'aria-label': `Select ${name}`, checked: state.selected.has(key(a)),
      onchange: (e) => { if (e.target.checked) state.selected.add(key(a)); else state.selected.delete(key(a)); updateSelection(); },
    })),
    el('td', { class: 'thumb' }, thumb),
    el('td', { text: a.exp }),
    el('td', { class: 'name', title: a.sha256 ? `SHA-256 ${a.sha256}` : '' }, ...nameParts(name)),
    el('td', { class: 'num', text: size(a.size) }),
    el('td', { class: 'when', text: when(a.modified) }),
    el('td', { class: 'actions' },
      previewable ? el('button', { type: 'button', class: 'preview', text: 'Preview', onclick: () => preview(a) }) : null,
      el('a', { class: 'button download', href: '/file?' + query(a, { mode: 'download' }), download: name.split('/').pop(), text: 'Download' }),
      el('button', { type: 'button', class: 'copy-link', text: 'Copy link', title: 'Copy a link that works for 24 hours', onclick: () => copyLink(a) })));
}

// A path as lines break it: after a slash only ("lightning_logs/" "version_0/" "hparams.yaml"), each part kept
// whole (white-space: nowrap), with a <wbr> between them.
function nameParts(path) {
  const parts = path.split(/(?<=\/)/);
  return parts.flatMap((p, i) => (i ? [el('wbr'), el('span', { text: p })] : [el('span', { text: p })]));
}

function updateSelection() {
  const n = state.artifacts.filter((a) => state.selected.has(key(a))).length;
  $('download-selected').disabled = n === 0;
  $('download-selected').textContent = n ? `Download selected (${n})` : 'Download selected';
}

function downloadSelected() {
  const items = state.artifacts.filter((a) => state.selected.has(key(a))).map((a) => [a.run, a.exp, a.path]);
  if (!items.length) return;
  $('zip-items').value = JSON.stringify(items);
  $('zip-form').submit();
}

async function copyLink(a) {
  try {
    const link = await api('/api/link?' + query(a), { method: 'POST' });
    let copied = true;
    try { await navigator.clipboard.writeText(link.url); } catch { copied = false; }
    const until = new Date(link.expiresAt).toLocaleString();
    toast(copied ? `Link to ${a.path} copied; it works until ${until}.` : `Copy this link to ${a.path}; it works until ${until}.`, link.url);
    for (const w of link.warnings) toast(w, link.url);
  } catch (e) {
    toast(`No link for ${a.path}: ${e.message}`);
  }
}

// ---- previews ----------------------------------------------------------------------------------

async function preview(a) {
  $('preview-title').textContent = `${a.exp}/${a.path}`;
  const body = $('preview-body');
  body.replaceChildren(el('p', { class: 'empty', text: 'Loading…' }));
  $('preview').showModal();
  if (a.kind === 'image') {
    // As an image, an SVG's scripts never run; its bytes are also served under a sandboxing policy.
    body.replaceChildren(el('img', { src: '/file?' + query(a, { mode: 'inline' }), alt: a.path }));
    return;
  }
  try {
    const res = await fetch('/file?' + query(a, { mode: 'preview' }), { credentials: 'same-origin' });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('x-grid-size'));
    let text = new TextDecoder('utf-8', { fatal: false }).decode(await res.arrayBuffer());
    const cut = total > text.length;
    const ext = a.path.split('.').pop().toLowerCase();
    if (ext === 'csv' || ext === 'tsv') {
      body.replaceChildren(csvTable(text, ext === 'tsv' ? '\t' : ',', cut));
    } else {
      const lines = text.split('\n');
      const more = lines.length > PREVIEW_LINES || cut;
      // replaceChildren would write a null as the text "null": only what is there goes in.
      const shown = [el('pre', { text: lines.slice(0, PREVIEW_LINES).join('\n') })];
      if (more) shown.push(el('p', { class: 'empty', text: `First ${Math.min(lines.length, PREVIEW_LINES)} lines of ${size(total)}.` }));
      body.replaceChildren(...shown);
    }
  } catch (e) {
    body.replaceChildren(el('p', { class: 'error', text: e.message }));
  }
}

function parseCsv(text, sep) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === sep) { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field.replace(/\r$/, '')); rows.push(row); row = []; field = ''; if (rows.length > PREVIEW_ROWS) break; }
    else field += c;
  }
  if (field || row.length) rows.push([...row, field.replace(/\r$/, '')]);
  return rows;
}

function csvTable(text, sep, cut) {
  const rows = parseCsv(text, sep);
  if (cut && rows.length > 1) rows.pop(); // the last row may be cut off mid-way
  const [head, ...rest] = rows;
  const table = el('table', { class: 'csv' },
    el('thead', {}, el('tr', {}, ...(head || []).map((h) => el('th', { text: h })))),
    el('tbody', {}, ...rest.slice(0, PREVIEW_ROWS).map((r) => el('tr', {}, ...r.map((v) => el('td', { text: v }))))));
  return rest.length > PREVIEW_ROWS || cut
    ? el('div', {}, table, el('p', { class: 'empty', text: `First ${Math.min(rest.length, PREVIEW_ROWS)} rows.` }))
    : table;
}

// While runs are active, read their state again every 10 s (only while the page is in view).
async function refreshActive() {
  const wasActive = state.runs.find((r) => r.name === state.run)?.active;
  if (document.hidden || !state.runs.some((r) => r.active)) return;
  await loadRuns();
  if (!state.run || !wasActive) return;
  const data = await api('/api/experiments?' + new URLSearchParams({ run: state.run }));
  state.experiments = data.experiments;
  renderExperiments();
  for (const x of state.experiments) {
    state.cache.delete(`${state.run}/${x.name}`);
    state.metrics.delete(`${state.run}\u0000${x.name}`);
  }
  drawChart();
  const filterAndLimit = state.artifactLimit;
  await loadArtifacts();
  state.artifactLimit = Math.max(state.artifactLimit, filterAndLimit);
  renderArtifacts();
}

// ---- wiring ------------------------------------------------------------------------------------

function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

document.addEventListener('DOMContentLoaded', async () => {
  for (const id of ['run-filter', 'tag-filter']) $(id).addEventListener('input', debounce(() => { state.runLimit = PAGE; renderRuns(); }, 120));
  $('chart-column').addEventListener('change', (e) => { state.chartColumn = e.target.value; drawChart(); });
  // Back, forward and a new address in the bar: both events can come for one step; followHash acts once.
  window.addEventListener('hashchange', followHash);
  window.addEventListener('popstate', followHash);
  // The chart is drawn at its width on screen: draw it again when that changes (not when only its height does).
  new ResizeObserver(debounce(() => { if (!$('chart').hidden && chartWidth() !== drawChart.width) drawChart(); }, 60)).observe($('chart-pane'));
  $('artifact-filter').addEventListener('input', debounce(() => { state.artifactLimit = PAGE; renderArtifacts(); }, 120));
  $('more-runs').addEventListener('click', () => { state.runLimit += PAGE; renderRuns(); });
  $('more-artifacts').addEventListener('click', () => { state.artifactLimit += PAGE; renderArtifacts(); });
  $('download-selected').addEventListener('click', downloadSelected);
  $('select-all').addEventListener('change', (e) => {
    for (const a of filteredArtifacts().slice(0, state.artifactLimit)) {
      if (e.target.checked) state.selected.add(key(a)); else state.selected.delete(key(a));
    }
    renderArtifacts();
  });
  $('all-experiments').addEventListener('change', (e) => {
    state.selectedExps = new Set(e.target.checked ? state.experiments.map((x) => x.name) : []);
    selectionChanged();
  });
  $('refresh').addEventListener('click', async () => {
    state.cache.clear();
    state.metrics.clear();
    await loadRuns(true);
    if (state.run) await selectRun(state.run, [...state.selectedExps]);
  });
  try {
    await loadRuns();
    const { run, exps } = readHash();
    if (run) await selectRun(run, exps);
  } catch (e) {
    $('store').textContent = e.message;
  }
  document.body.dataset.ready = 'true';
  setInterval(() => refreshActive().catch(() => {}), 10000);
});
