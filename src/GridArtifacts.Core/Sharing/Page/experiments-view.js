// The experiments pane: a table of parameters and metrics, sortable by any column, with a tick per experiment.
import { $, el } from './dom.js';
import { fmt, size } from './format.js';
import { ending, status, tagButton } from './runs-view.js';
import { cell, sortExperiments, union } from './text.js';

// on: { sortBy(key), tick(name, on), filtered() }
export function renderExperiments(state, on) {
  const params = union(state.experiments.map((x) => x.parameters));
  const metrics = union(state.experiments.map((x) => x.metrics));
  const columns = [
    { key: 'name', label: 'Experiment' }, { key: 'status', label: 'Status' }, { key: 'tags', label: 'Tags' },
    ...params.map((p) => ({ key: `param:${p}`, label: p, class: 'param', title: `Parameter ${p}` })),
    ...metrics.map((m) => ({ key: `metric:${m}`, label: m, class: 'metric num', title: `Metric ${m} (its last value)` })),
    { key: 'artifacts', label: 'Files', class: 'num' }, { key: 'bytes', label: 'Size', class: 'num' },
  ];
  const sort = state.sort;
  const sorted = (key) => (sort?.key !== key ? 'none' : sort.dir > 0 ? 'ascending' : 'descending');
  $('experiments-head').replaceChildren(el('th', {}),
    ...columns.map((c) => el('th', { class: c.class, title: c.title, 'aria-sort': sorted(c.key), dataset: { sort: c.key } },
      el('button', { type: 'button', class: 'sort', text: c.label, onclick: () => on.sortBy(c.key) }))));
  const rows = sortExperiments(state.experiments, sort).map((x) => el('tr', { dataset: { exp: x.name } },
    el('td', {}, el('input', { type: 'checkbox', value: x.name, 'aria-label': `Select ${x.name}`, checked: state.isExpSelected(x.name), onchange: (e) => on.tick(e.target.value, e.target.checked) })),
    el('td', { text: x.name, title: x.id }), el('td', {}, status(x.status), ending(x)),
    el('td', { class: 'tags' }, ...x.tags.map((t) => tagButton(t, x.ownTags.includes(t), on.filtered))),
    ...params.map((p) => el('td', { class: 'param', text: cell(x, `param:${p}`) ?? '' })),
    ...metrics.map((m) => { const v = cell(x, `metric:${m}`); return el('td', { class: 'num', text: v === undefined ? '' : fmt(v), title: v === undefined ? '' : String(v) }); }),
    el('td', { class: 'num', text: x.artifacts }), el('td', { class: 'num', text: size(x.bytes) })));
  $('experiments').replaceChildren(...rows);
  const count = state.experiments.length;
  $('experiments-table').hidden = count === 0;
  $('experiments-hint').textContent = count ? 'Select experiments to see their artifacts.' : 'This run has no experiments yet.';
  $('experiments-hint').hidden = state.selectedExpCount() > 0;
  $('all-experiments-label').hidden = count < 2;
  $('all-experiments').checked = count > 0 && state.selectedExpCount() === count;
}
