// The preview dialog: an image as an image, a csv or tsv as a table, any other text as text.
import { fileUrl, getPreview } from './api.js';
import { csvPreview, textPreview } from './csv.js';
import { $, el } from './dom.js';
import { size, sizeHeader } from './format.js';

const PREVIEW_LINES = 200; // lines of a text artifact shown
const PREVIEW_ROWS = 100;  // rows of a csv artifact shown

export async function preview(a) {
  $('preview-title').textContent = `${a.exp}/${a.path}`;
  const body = $('preview-body');
  body.replaceChildren(el('p', { class: 'empty', text: 'Loading…' }));
  $('preview').showModal();
  if (a.kind === 'image') {
    // As an image, an SVG's scripts never run; its bytes are also served under a sandboxing policy.
    body.replaceChildren(el('img', { src: fileUrl(a, 'inline'), alt: a.path }));
    return;
  }
  try {
    const read = await getPreview(a);
    const total = sizeHeader(read.sizeHeader);
    const text = new TextDecoder('utf-8', { fatal: false }).decode(read.bytes);
    const cut = total > text.length;
    const ext = a.path.split('.').pop().toLowerCase();
    if (ext === 'csv' || ext === 'tsv') {
      body.replaceChildren(csvTable(csvPreview(text, ext === 'tsv' ? '\t' : ',', cut, PREVIEW_ROWS)));
    } else {
      const shown = textPreview(text, cut, PREVIEW_LINES);
      // replaceChildren would write a null as the text "null": only what is there goes in.
      const nodes = [el('pre', { text: shown.text })];
      if (shown.more) nodes.push(el('p', { class: 'empty', text: `First ${shown.lines} lines of ${size(total)}.` }));
      body.replaceChildren(...nodes);
    }
  } catch (e) {
    body.replaceChildren(el('p', { class: 'error', text: e.message }));
  }
}

function csvTable({ head, rows, more }) {
  const table = el('table', { class: 'csv' },
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { text: h })))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((v) => el('td', { text: v }))))));
  return more ? el('div', {}, table, el('p', { class: 'empty', text: `First ${rows.length} rows.` })) : table;
}
