// Pure text for numbers, sizes and times: no DOM, no fetching (tests/page/format.test.mjs).

// Sizes as the cmdlets write them (SizeText): 1,024-based, one decimal at most, 3 MiB, 195.3 KiB.
export function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : Math.round(n * 10) / 10) + ' ' + units[i];
}

const pad = (n) => String(n).padStart(2, '0');

// A time as the page shows it, in the browser's time zone: 2024-05-01 14:03; empty for none.
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A metric's value in a table cell: four significant digits; anything else as it is.
export const fmt = (v, digits = 4) => (typeof v === 'number' ? String(Number(v.toPrecision(digits))) : v);

// Beside an experiment's status, how it ended, short: the signal that stopped it, a non-zero exit code,
// or that its cluster task ended before it started; null when it ended plainly.
export const endingText = (x) => x.signal || (x.exitCode ? `exit ${x.exitCode}` : x.reason ? 'before start' : null);

// A cluster run's job, short and in full; null for a run that is not one.
export const jobText = (r) => (r.job ? { short: `${r.scheduler} ${r.job}`, title: `${r.scheduler} job ${r.job}${r.cluster ? ` on cluster ${r.cluster}` : ''}` } : null);

// The whole size of a previewed artifact from its X-Grid-Size header; NaN when missing or not a count.
export function sizeHeader(value) {
  if (value === null || value === undefined || !/^[0-9]+$/.test(value)) return NaN;
  return Number(value);
}
