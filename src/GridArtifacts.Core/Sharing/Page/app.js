// The artifacts page. Everything the store holds is someone else's data: it is only ever put into
// the page as text (textContent, attribute values), never as markup.
'use strict';

const PAGE = 500;          // rows rendered at once; "Show more" adds the next page
const PREVIEW_LINES = 200; // lines of a text artifact shown
const PREVIEW_ROWS = 100;  // rows of a csv artifact shown

const state = {
  runs: [], runLimit: PAGE, run: null, experiments: [], selectedExps: new Set(),
  artifacts: [], artifactLimit: PAGE, selected: new Set(), cache: new Map(),
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

function size(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

const pad = (n) => String(n).padStart(2, '0');
function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const status = (s) => el('span', { class: `status ${s}`, text: s });
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

function writeHash() {
  const p = new URLSearchParams();
  if (state.run) p.set('run', state.run);
  if (state.selectedExps.size) p.set('exp', [...state.selectedExps].join(','));
  history.replaceState(null, '', '#' + p.toString());
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

function renderRuns() {
  const filter = matcher($('run-filter').value);
  const shown = state.runs.filter((r) => filter(r.name));
  const active = shown.filter((r) => r.active);
  const finished = shown.filter((r) => !r.active);
  const limit = state.runLimit;
  const row = (r) => el('tr', {
    class: 'run' + (r.name === state.run ? ' selected' : ''), dataset: { run: r.name }, tabindex: '0', title: r.command || '',
    onclick: () => selectRun(r.name, []),
    onkeydown: (e) => { if (e.key === 'Enter') selectRun(r.name, []); },
  }, el('td', {}, r.name, r.protected ? el('span', { class: 'protected', text: 'protected', title: 'Protected: never removed (Unprotect-GridRun to allow it)' }) : null), el('td', {}, status(r.status)), el('td', { class: 'when', text: when(r.created) }), el('td', { class: 'num', text: r.experiments }));
  $('active-runs').replaceChildren(...active.slice(0, limit).map(row));
  $('finished-runs').replaceChildren(...finished.slice(0, limit).map(row));
  $('active-empty').hidden = active.length > 0;
  $('finished-empty').hidden = finished.length > 0;
  $('more-runs').hidden = active.length <= limit && finished.length <= limit;
}

async function selectRun(name, exps) {
  state.run = name;
  state.selectedExps = new Set(exps);
  state.artifacts = [];
  state.selected.clear();
  renderRuns();
  renderArtifacts();
  $('experiments-hint').textContent = 'Loading…';
  $('experiments-hint').hidden = false;
  $('experiments').replaceChildren();
  try {
    const data = await api('/api/experiments?' + new URLSearchParams({ run: name }));
    if (state.run !== name) return;
    state.experiments = data.experiments;
    if (state.selectedExps.size === 0 && data.experiments.length === 1) state.selectedExps.add(data.experiments[0].name);
    renderExperiments();
    for (const e of data.errors) toast(e);
    await loadArtifacts();
  } catch (e) {
    $('experiments-hint').textContent = e.message;
  }
}

function renderExperiments() {
  const list = state.experiments.map((x) => el('li', {},
    el('label', { title: [x.id, ...Object.entries(x.parameters || {}).map(([k, v]) => `${k}=${v}`)].join(' ') },
      el('input', { type: 'checkbox', value: x.name, checked: state.selectedExps.has(x.name), onchange: onExperimentToggled }),
      el('span', { text: x.name }), status(x.status),
      el('span', { class: 'meta', text: `${x.artifacts} · ${size(x.bytes)}` }))));
  $('experiments').replaceChildren(...list);
  $('experiments-hint').textContent = state.experiments.length ? 'Select experiments to see their artifacts.' : 'This run has no experiments yet.';
  $('experiments-hint').hidden = state.selectedExps.size > 0;
  $('all-experiments-label').hidden = state.experiments.length < 2;
  $('all-experiments').checked = state.experiments.length > 0 && state.selectedExps.size === state.experiments.length;
}

function onExperimentToggled(e) {
  if (e.target.checked) state.selectedExps.add(e.target.value); else state.selectedExps.delete(e.target.value);
  renderExperiments();
  loadArtifacts();
}

// ---- artifacts ---------------------------------------------------------------------------------

async function loadArtifacts() {
  writeHash();
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
    if (state.run !== run) return;
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
    el('td', { class: 'name', text: name, title: a.sha256 ? `SHA-256 ${a.sha256}` : '' }),
    el('td', { class: 'num', text: size(a.size) }),
    el('td', { class: 'when', text: when(a.modified) }),
    el('td', { class: 'actions' },
      previewable ? el('button', { type: 'button', class: 'preview', text: 'Preview', onclick: () => preview(a) }) : null,
      el('a', { class: 'button download', href: '/file?' + query(a, { mode: 'download' }), download: name.split('/').pop(), text: 'Download' }),
      el('button', { type: 'button', class: 'copy-link', text: 'Copy link', title: 'Copy a link that works for 24 hours', onclick: () => copyLink(a) })));
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
      body.replaceChildren(el('pre', { text: lines.slice(0, PREVIEW_LINES).join('\n') }),
        more ? el('p', { class: 'empty', text: `First ${Math.min(lines.length, PREVIEW_LINES)} lines of ${size(total)}.` }) : null);
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
  for (const x of state.experiments) state.cache.delete(`${state.run}/${x.name}`);
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
  $('run-filter').addEventListener('input', debounce(() => { state.runLimit = PAGE; renderRuns(); }, 120));
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
    renderExperiments();
    loadArtifacts();
  });
  $('refresh').addEventListener('click', async () => {
    state.cache.clear();
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
