// The csv preview's parsing (src/GridArtifacts.Core/Sharing/Page/csv.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvPreview, parseCsv, textPreview } from '../../src/GridArtifacts.Core/Sharing/Page/csv.js';

test('plain rows, with and without a final newline, and CRLF line ends', () => {
  assert.deepEqual(parseCsv('a,b\n1,2\n', ','), [['a', 'b'], ['1', '2']]);
  assert.deepEqual(parseCsv('a,b\n1,2', ','), [['a', 'b'], ['1', '2']]);
  assert.deepEqual(parseCsv('a,b\r\n1,2\r\n', ','), [['a', 'b'], ['1', '2']]);
});

test('quoted fields hold separators, newlines and doubled quotes', () => {
  assert.deepEqual(parseCsv('name,note\n"a,b","say ""hi""\nagain"\n', ','), [['name', 'note'], ['a,b', 'say "hi"\nagain']]);
  // A quote inside an unquoted field is a character like any other.
  assert.deepEqual(parseCsv('x\n5"6\n', ','), [['x'], ['5"6']]);
  // An empty quoted field is empty.
  assert.deepEqual(parseCsv('"",b\n', ','), [['', 'b']]);
});

test('empty lines are rows of one empty field; empty text is no rows', () => {
  assert.deepEqual(parseCsv('a\n\nb\n', ','), [['a'], [''], ['b']]);
  assert.deepEqual(parseCsv('', ','), []);
  assert.deepEqual(parseCsv('\n', ','), [['']]);
});

test('values are kept as text: NaN, inf, huge counts and empty cells are not numbers here', () => {
  const rows = parseCsv('step,loss,count\n1,NaN,123456789012345678901234567890\n2,,inf\n', ',');
  assert.deepEqual(rows[1], ['1', 'NaN', '123456789012345678901234567890']);
  assert.deepEqual(rows[2], ['2', '', 'inf']);
});

test('a tab separates a tsv, and a comma inside it is text', () => {
  assert.deepEqual(parseCsv('a\tb\n1,5\t2\n', '\t'), [['a', 'b'], ['1,5', '2']]);
});

test('reading stops at the number of rows asked for', () => {
  const text = Array.from({ length: 1000 }, (_, i) => `${i},${i * 2}`).join('\n');
  const rows = parseCsv(text, ',', 10);
  assert.equal(rows.length, 10);
  assert.deepEqual(rows[9], ['9', '18']);
});

test('a preview shows the header and at most maxRows rows, and says when there are more', () => {
  const lines = (n) => ['step,loss', ...Array.from({ length: n }, (_, i) => `${i},0.5`)].join('\n') + '\n';
  const exact = csvPreview(lines(100), ',', false, 100);
  assert.deepEqual(exact.head, ['step', 'loss']);
  assert.equal(exact.rows.length, 100);
  assert.equal(exact.more, false);
  const over = csvPreview(lines(101), ',', false, 100);
  assert.equal(over.rows.length, 100);
  assert.equal(over.more, true);
  const few = csvPreview(lines(3), ',', false, 100);
  assert.deepEqual(few.rows, [['0', '0.5'], ['1', '0.5'], ['2', '0.5']]);
  assert.equal(few.more, false);
});

test('a cut preview drops its last row, which may be cut mid-way, and says there is more', () => {
  const cut = csvPreview('step,loss\n1,0.5\n2,0.2', ',', true, 100);
  assert.deepEqual(cut.rows, [['1', '0.5']]);
  assert.equal(cut.more, true);
  // A header alone is kept even when cut.
  assert.deepEqual(csvPreview('step,lo', ',', true, 100), { head: ['step', 'lo'], rows: [], more: true });
  assert.deepEqual(csvPreview('', ',', false, 100), { head: [], rows: [], more: false });
});

test('a text preview shows its first lines and says when there are more', () => {
  assert.deepEqual(textPreview('a\nb\nc', false, 2), { text: 'a\nb', lines: 2, more: true });
  assert.deepEqual(textPreview('a\nb', false, 2), { text: 'a\nb', lines: 2, more: false });
  assert.deepEqual(textPreview('a', true, 2), { text: 'a', lines: 1, more: true });
});
