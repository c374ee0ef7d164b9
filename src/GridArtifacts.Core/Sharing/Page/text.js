// Pure helpers for names, filters, sorting and the address's hash (tests/page/text.test.mjs).

// Own keys only: a metric named "constructor" or "__proto__" is a name like any other.
export const own = (o, k) => (o && Object.hasOwn(o, k) ? o[k] : undefined);
export const union = (objects) => [...new Set(objects.flatMap((o) => Object.keys(o || {})))].sort((a, b) => a.localeCompare(b));

// The key of an artifact in a selection: its experiment and path.
export const artifactKey = (a) => `${a.exp}\u0000${a.path}`;

// A column's value for an experiment by its data-sort key ("param:lr", "metric:val_loss", ...); undefined when missing.
export function cell(x, sortKey) {
  const at = sortKey.indexOf(':');
  const [kind, name] = at < 0 ? [sortKey, ''] : [sortKey.slice(0, at), sortKey.slice(at + 1)];
  switch (kind) {
    case 'param': return own(x.parameters, name);
    case 'metric': return own(x.metrics, name);
    case 'tags': return x.tags.length ? x.tags.join(' ') : undefined;
    default: return x[kind];
  }
}

// Numbers as numbers when both sides are finite numbers, else text with digit runs as numbers ("exp2" < "exp10").
export function compare(a, b) {
  const num = (v) => (typeof v === 'number' ? v : String(v).trim() === '' ? NaN : Number(v));
  const x = num(a), y = num(b);
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

// Experiments in the order of a sort ({ key, dir: 1 | -1 }), missing values last in either direction; a new array.
export function sortExperiments(experiments, sort) {
  if (!sort) return experiments;
  const missing = (v) => v === undefined || v === null || v === '';
  return [...experiments].sort((p, q) => {
    const a = cell(p, sort.key), b = cell(q, sort.key);
    if (missing(a) || missing(b)) return missing(a) - missing(b);
    return sort.dir * compare(a, b);
  });
}

// Each chart line's name: its experiment and the parameters that differ between the charted experiments (exp1 lr=0.01).
export function lineNames(exps, experiments) {
  const records = exps.map((name) => experiments.find((x) => x.name === name));
  const text = (v) => (v === undefined ? undefined : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  const varying = union(records.map((x) => x?.parameters))
    .filter((p) => new Set(records.map((x) => text(own(x?.parameters, p)) ?? '\u0000')).size > 1);
  return records.map((x, i) => [exps[i], ...varying.filter((p) => own(x?.parameters, p) !== undefined)
    .map((p) => `${p}=${text(own(x.parameters, p))}`)].join(' '));
}

// A filter: * and ? are wildcards (matching the whole path or its last part); otherwise a case-insensitive substring.
export function matcher(text) {
  const t = text.trim().toLowerCase();
  if (!t) return () => true;
  if (!/[*?]/.test(t)) return (s) => s.toLowerCase().includes(t);
  const re = new RegExp('^' + t.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&'))).join('') + '$');
  return (s) => re.test(s.toLowerCase()) || re.test(s.toLowerCase().split('/').pop());
}

// A tag filter reads as Get-GridRun -Tag does: the whole tag, or a * and ? wildcard (keep is not keeper).
export function tagMatcher(text) {
  const t = text.trim().toLowerCase();
  return /[*?]/.test(t) ? matcher(t) : (s) => s.toLowerCase() === t;
}

// A path as lines may break it: after a slash only ("lightning_logs/" "version_0/" "hparams.yaml").
export const pathParts = (path) => path.split(/(?<=\/)/);

// The location hash: #run=NAME&exp=exp0,exp1.
export function parseHash(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  return { run: p.get('run'), exps: (p.get('exp') || '').split(',').filter(Boolean) };
}

export function hashOf(run, exps) {
  const p = new URLSearchParams();
  if (run) p.set('run', run);
  if (exps.length) p.set('exp', exps.join(','));
  return '#' + p.toString();
}
