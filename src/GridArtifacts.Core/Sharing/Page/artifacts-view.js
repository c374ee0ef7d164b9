// The artifacts pane: the selected experiments' artifacts, filtered, picked, downloaded, linked and previewed.
import { fileUrl, newLink } from './api.js';
import { $, el, toast } from './dom.js';
import { size, when } from './format.js';
import { preview } from './preview-view.js';
import { artifactKey, matcher, pathParts } from './text.js';

export function filteredArtifacts(state) {
  const f = matcher($('artifact-filter').value);
  return state.artifacts.filter((a) => f(a.path));
}

export function renderArtifacts(state) {
  const shown = filteredArtifacts(state);
  const limit = state.artifactLimit;
  const rows = shown.slice(0, limit).map((a) => artifactRow(state, a));
  $('artifacts').replaceChildren(...rows);
  $('more-artifacts').hidden = shown.length <= limit;
  $('more-artifacts').textContent = `Show more (${shown.length - Math.min(shown.length, limit)} left)`;
  const total = state.artifacts.length;
  $('artifact-count').textContent = state.selectedExpCount() === 0 ? '' :
    shown.length === total ? `${total} artifacts` : `${shown.length} of ${total} artifacts`;
  $('select-all').checked = rows.length > 0 && shown.slice(0, limit).every((a) => state.isSelected(artifactKey(a)));
  updateSelection(state);
}

function artifactRow(state, a) {
  const name = a.path;
  const previewable = a.kind === 'image' || a.kind === 'text';
  const thumb = a.kind === 'image'
    ? el('img', { src: fileUrl(a, 'inline'), alt: '', loading: 'lazy', onclick: () => preview(a) })
    : null;
  return el('tr', { dataset: { path: a.path, exp: a.exp } },
    el('td', {}, el('input', {
      type: 'checkbox', class: 'pick', 'aria-label': `Select ${name}`, checked: state.isSelected(artifactKey(a)),
      onchange: (e) => { state.pick(artifactKey(a), e.target.checked); updateSelection(state); },
    })),
    el('td', { class: 'thumb' }, thumb),
    el('td', { text: a.exp }),
    el('td', { class: 'name', title: a.sha256 ? `SHA-256 ${a.sha256}` : '' }, ...nameParts(name)),
    el('td', { class: 'num', text: size(a.size) }),
    el('td', { class: 'when', text: when(a.modified) }),
    el('td', { class: 'actions' },
      previewable ? el('button', { type: 'button', class: 'preview', text: 'Preview', onclick: () => preview(a) }) : null,
      el('a', { class: 'button download', href: fileUrl(a, 'download'), download: name.split('/').pop(), text: 'Download' }),
      el('button', { type: 'button', class: 'copy-link', text: 'Copy link', title: 'Copy a link that works for 24 hours', onclick: () => copyLink(a) })));
}

// A path as lines break it: each part kept whole (white-space: nowrap), with a <wbr> between them.
const nameParts = (path) => pathParts(path).flatMap((p, i) => (i ? [el('wbr'), el('span', { text: p })] : [el('span', { text: p })]));

export function updateSelection(state) {
  const n = state.selectedArtifacts(artifactKey).length;
  $('download-selected').disabled = n === 0;
  $('download-selected').textContent = n ? `Download selected (${n})` : 'Download selected';
}

export function downloadSelected(state) {
  const items = state.selectedArtifacts(artifactKey).map((a) => [a.run, a.exp, a.path]);
  if (!items.length) return;
  $('zip-items').value = JSON.stringify(items);
  $('zip-form').submit();
}

async function copyLink(a) {
  try {
    const link = await newLink(a);
    let copied = true;
    try { await navigator.clipboard.writeText(link.url); } catch { copied = false; }
    const until = new Date(link.expiresAt).toLocaleString();
    toast(copied ? `Link to ${a.path} copied; it works until ${until}.` : `Copy this link to ${a.path}; it works until ${until}.`, link.url);
    for (const w of link.warnings) toast(w, link.url);
  } catch (e) {
    toast(`No link for ${a.path}: ${e.message}`);
  }
}
