// The runs pane: active and finished runs, filtered by name and tag, a page at a time.
import { $, el } from './dom.js';
import { endingText, jobText, size, when } from './format.js';
import { matcher, tagMatcher } from './text.js';

export const status = (s) => el('span', { class: `status ${s}`, text: s });

// Beside an experiment's status, how it ended (the scheduler's whole reason is the title).
export function ending(x) {
  const short = endingText(x);
  return short ? el('span', { class: 'ending', text: short, title: x.reason }) : null;
}

// Beside a cluster run's status, its scheduler's job.
function job(r) {
  const j = jobText(r);
  return j ? el('span', { class: 'ending', text: j.short, title: j.title }) : null;
}

// A tag as a button that filters the runs by it.
export const tagButton = (t, own, onFilter) => el('button', {
  type: 'button', class: 'tag' + (own ? ' own' : ''), text: t, title: `Show the runs tagged ${t}`,
  onclick: (e) => { e.stopPropagation(); $('tag-filter').value = t; onFilter(); },
});

// on: { open(name), filtered() } - a run clicked, the tag filter set by a tag's button.
export function renderRuns(state, on) {
  const filter = matcher($('run-filter').value);
  const tagged = $('tag-filter').value.trim() ? tagMatcher($('tag-filter').value) : null;
  const shown = state.runs.filter((r) => filter(r.name) && (!tagged || r.tags.some(tagged)));
  const active = shown.filter((r) => r.active);
  const finished = shown.filter((r) => !r.active);
  const limit = state.runLimit;
  const row = (r) => el('tr', {
    class: 'run' + (r.name === state.run ? ' selected' : '') + (r.protected ? ' protected' : ''), dataset: { run: r.name }, tabindex: '0', title: r.command || '',
    onclick: () => on.open(r.name),
    onkeydown: (e) => { if (e.key === 'Enter' && e.target === e.currentTarget) on.open(r.name); },
  }, el('td', {}, r.name, r.protected ? el('span', { class: 'protected', text: 'protected', title: 'Protected: never removed (Unprotect-GridRun to allow it)' }) : null),
  el('td', {}, status(r.status), job(r)), el('td', { class: 'tags' }, ...r.tags.map((t) => tagButton(t, false, on.filtered))),
  el('td', { class: 'when', text: when(r.created) }), el('td', { class: 'num', text: r.experiments, title: `${size(r.bytes)} of artifacts` }));
  $('active-runs').replaceChildren(...active.slice(0, limit).map(row));
  $('finished-runs').replaceChildren(...finished.slice(0, limit).map(row));
  $('active-empty').hidden = active.length > 0;
  $('finished-empty').hidden = finished.length > 0;
  $('more-runs').hidden = active.length <= limit && finished.length <= limit;
}
