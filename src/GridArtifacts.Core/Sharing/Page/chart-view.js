// The metrics pane: the selected experiments' curves fetched, a column chosen, hints written, the chart drawn.
import { getMetrics } from './api.js';
import { CHART, draw } from './chart.js';
import { $ } from './dom.js';
import { drawable } from './scale.js';
import { lineNames, own } from './text.js';

let generation = 0;
let drawnWidth;

export const chartWidth = () => Math.max(CHART.minWidth, Math.round($('chart').getBoundingClientRect().width));

// True when the chart is shown at another width than it was drawn at.
export const chartResized = () => !$('chart').hidden && chartWidth() !== drawnWidth;

// The column shown: the one chosen, else val_loss, else the first.
export const chooseColumn = (columns, chosen) => (columns.includes(chosen) ? chosen : columns.includes('val_loss') ? 'val_loss' : columns[0]);

export async function drawChart(state) {
  const mine = ++generation;
  const run = state.run;
  const exps = state.selectedExpNames();
  const data = await Promise.all(exps.map((exp) => getMetrics(run, exp)));
  if (mine !== generation) return; // a later selection draws instead
  const columns = [...new Set(data.flatMap((d) => d.columns || []))].sort((a, b) => a.localeCompare(b));
  const select = $('chart-column');
  if ([...select.options].map((o) => o.value).join('\u0000') !== columns.join('\u0000')) {
    select.replaceChildren(...columns.map((c) => new Option(c, c)));
  }
  const column = chooseColumn(columns, state.chartColumn);
  select.value = column ?? '';
  select.hidden = columns.length === 0; // nothing to choose: no empty list
  const chart = $('chart');
  const notes = data.flatMap((d, i) => (d.error || d.problem ? [`${exps[i]}: ${d.error || d.problem}`] : d.source ? [] : [`${exps[i]}: no metrics.csv`]));
  $('chart-hint').textContent = !exps.length ? 'Select experiments to chart the metrics.csv they wrote.'
    : !column ? `No metrics to chart. ${notes.join('; ')}` : notes.join('; ');
  $('chart-hint').hidden = !$('chart-hint').textContent;
  chart.toggleAttribute('hidden', !column);
  if (!column) { chart.replaceChildren(); return; }

  const names = lineNames(exps, state.experiments);
  const lines = data.map((d, i) => ({
    exp: exps[i], name: names[i], source: d.source, colour: `s${i % CHART.colours}`, points: drawable(own(d.series, column)),
  }));
  const xName = [...new Set(data.filter((d) => d.source).map((d) => d.x || 'row'))].join(' / ') || 'step';
  const width = chartWidth();
  draw(chart, { lines, column, xName, width });
  drawnWidth = width;
}
