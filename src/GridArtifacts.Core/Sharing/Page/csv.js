// A csv or tsv artifact's first rows for its preview: pure (tests/page/csv.test.mjs).

// Rows of fields: quoted fields may hold the separator, newlines and doubled quotes; a \r before a newline
// goes. Reading stops once there are maxRows rows, so a huge file costs only what is shown.
export function parseCsv(text, sep, maxRows = Infinity) {
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
    else if (c === '\n') { row.push(field.replace(/\r$/, '')); rows.push(row); row = []; field = ''; if (rows.length >= maxRows) break; }
    else field += c;
  }
  if (field || row.length) rows.push([...row, field.replace(/\r$/, '')]);
  return rows;
}

// What a preview shows of a csv: its header, at most maxRows rows, and whether there is more than that.
// When the text was cut (the server sends the first 64 KiB), its last row may be cut off mid-way: it goes.
export function csvPreview(text, sep, cut, maxRows) {
  // The header, the rows shown and one more, which says there are more.
  const rows = parseCsv(text, sep, maxRows + 2);
  if (cut && rows.length > 1) rows.pop();
  const [head, ...rest] = rows;
  return { head: head || [], rows: rest.slice(0, maxRows), more: rest.length > maxRows || cut };
}

// What a preview shows of a text: its first maxLines lines, and whether there is more.
export function textPreview(text, cut, maxLines) {
  const lines = text.split('\n');
  return { text: lines.slice(0, maxLines).join('\n'), lines: Math.min(lines.length, maxLines), more: lines.length > maxLines || cut };
}
