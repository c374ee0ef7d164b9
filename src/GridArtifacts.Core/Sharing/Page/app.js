// The artifacts page: what happens on a click, a new address or a timer. The state is in state.js, the
// requests in api.js, each pane's drawing in its *-view.js; the pure parts (text.js, format.js, csv.js,
// scale.js) are tested by tests/page.
import { forget, getArtifacts, getExperiments, getRuns, getStore } from './api.js';
import { downloadSelected, filteredArtifacts, renderArtifacts } from './artifacts-view.js';
import { chartResized, drawChart } from './chart-view.js';
import { $, debounce, toast } from './dom.js';
import { renderExperiments } from './experiments-view.js';
import { renderRuns } from './runs-view.js';
import { createState } from './state.js';
import { artifactKey, hashOf, parseHash } from './text.js';

const state = createState();

const runsOn = { open: (name) => selectRun(name, [], true), filtered: () => { state.resetRunLimit(); showRuns(); } };
const experimentsOn = {
  sortBy: (key) => { state.sortBy(key); showExperiments(); },
  tick: (name, on) => { state.tickExperiment(name, on); selectionChanged(); },
  filtered: runsOn.filtered,
};
const showRuns = () => renderRuns(state, runsOn);
const showExperiments = () => renderExperiments(state, experimentsOn);
const showArtifacts = () => renderArtifacts(state);
const showChart = () => drawChart(state);

// ---- location hash: #run=NAME&exp=exp0,exp1 -----------------------------------------------------

// A run opened by a click is a new step in the history (back returns to the run before); ticking
// experiments only rewrites the current step.
function writeHash(push) {
  const hash = hashOf(state.run, state.selectedExps());
  if (hash === location.hash) return;
  if (push) history.pushState(null, '', hash); else history.replaceState(null, '', hash);
}

// The address changed under the page (typed, a bookmark, back or forward): show what it names.
function followHash() {
  const { run, exps } = parseHash(location.hash);
  if (hashOf(run, exps) === hashOf(state.run, state.selectedExps())) return;
  if (!run) { clearRun(); return; }
  if (run !== state.run) { selectRun(run, exps); return; }
  state.setSelectedExps(exps);
  selectionChanged();
}

function clearRun() {
  state.openRun(null, []);
  showRuns();
  showExperiments();
  $('experiments-hint').textContent = 'Choose a run.';
  $('experiments-hint').hidden = false;
  showChart();
  showArtifacts();
}

// ---- runs and experiments -------------------------------------------------------------------------

async function loadRuns(fresh) {
  if (!state.runs.length) $('active-empty').textContent = 'Loading runs…';
  $('active-empty').hidden = state.runs.length > 0;
  const [store, data] = await Promise.all([getStore(), getRuns(fresh)]);
  $('active-empty').textContent = 'No active runs.';
  $('store').textContent = store.location;
  state.setRuns(data.runs);
  showRuns();
  for (const e of data.errors) toast(e);
}

async function selectRun(name, exps, push) {
  const another = name !== state.run;
  state.openRun(name, exps);
  writeHash(push && another);
  showRuns();
  showArtifacts();
  $('experiments-hint').textContent = 'Loading…';
  $('experiments-hint').hidden = false;
  $('experiments-head').replaceChildren();
  $('experiments').replaceChildren();
  showChart();
  try {
    const data = await getExperiments(name);
    if (state.run !== name) return;
    state.setExperiments(data.experiments, { tickSingle: true });
    showExperiments();
    for (const e of data.errors) toast(e);
    showChart();
    await loadArtifacts();
  } catch (e) {
    $('experiments-hint').textContent = e.message;
  }
}

function selectionChanged() {
  showExperiments();
  showChart();
  loadArtifacts();
}

// ---- artifacts -----------------------------------------------------------------------------------

let listing = 0;
async function loadArtifacts() {
  writeHash(false);
  const mine = ++listing;
  const run = state.run;
  const exps = state.selectedExpNames();
  $('artifact-count').textContent = exps.length ? 'Loading…' : '';
  try {
    const lists = await Promise.all(exps.map((exp) => getArtifacts(run, exp, toast)));
    if (state.run !== run || mine !== listing) return; // a later selection lists instead
    state.setArtifacts(lists.flat(), artifactKey);
    state.resetArtifactLimit();
    showArtifacts();
  } catch (e) {
    $('artifact-count').textContent = e.message;
  }
}

// While runs are active, read their state again every 10 s (only while the page is in view).
async function refreshActive() {
  const wasActive = state.isRunActive(state.run);
  if (document.hidden || !state.anyRunActive()) return;
  await loadRuns();
  if (!state.run || !wasActive) return;
  const data = await getExperiments(state.run);
  state.setExperiments(data.experiments);
  showExperiments();
  for (const x of state.experiments) forget(state.run, x.name);
  showChart();
  const shownBefore = state.artifactLimit;
  await loadArtifacts();
  state.setArtifactLimit(Math.max(state.artifactLimit, shownBefore));
  showArtifacts();
}

// ---- wiring ------------------------------------------------------------------------------------

async function start() {
  for (const id of ['run-filter', 'tag-filter']) $(id).addEventListener('input', debounce(runsOn.filtered, 120));
  $('chart-column').addEventListener('change', (e) => { state.setChartColumn(e.target.value); showChart(); });
  // Back, forward and a new address in the bar: both events can come for one step; followHash acts once.
  window.addEventListener('hashchange', followHash);
  window.addEventListener('popstate', followHash);
  // The chart is drawn at its width on screen: draw it again when that changes (not when only its height does).
  new ResizeObserver(debounce(() => { if (chartResized()) showChart(); }, 60)).observe($('chart-pane'));
  $('artifact-filter').addEventListener('input', debounce(() => { state.resetArtifactLimit(); showArtifacts(); }, 120));
  $('more-runs').addEventListener('click', () => { state.showMoreRuns(); showRuns(); });
  $('more-artifacts').addEventListener('click', () => { state.showMoreArtifacts(); showArtifacts(); });
  $('download-selected').addEventListener('click', () => downloadSelected(state));
  $('select-all').addEventListener('change', (e) => {
    for (const a of filteredArtifacts(state).slice(0, state.artifactLimit)) state.pick(artifactKey(a), e.target.checked);
    showArtifacts();
  });
  $('all-experiments').addEventListener('change', (e) => {
    state.setSelectedExps(e.target.checked ? state.experiments.map((x) => x.name) : []);
    selectionChanged();
  });
  $('refresh').addEventListener('click', async () => {
    forget();
    await loadRuns(true);
    if (state.run) await selectRun(state.run, state.selectedExps());
  });
  try {
    await loadRuns();
    const { run, exps } = parseHash(location.hash);
    if (run) await selectRun(run, exps);
  } catch (e) {
    $('store').textContent = e.message;
  }
  document.body.dataset.ready = 'true';
  setInterval(() => refreshActive().catch(() => {}), 10000);
}

// A module runs after the document is parsed (as a deferred script does), but DOMContentLoaded may not have fired.
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
