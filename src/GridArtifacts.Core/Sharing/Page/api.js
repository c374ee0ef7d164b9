// The server's API: every request the page makes, and what it keeps of the answers (artifact lists and
// metrics, until they are dropped). No DOM.

export async function api(url, options = {}) {
  const res = await fetch(url, { credentials: 'same-origin', ...options });
  const body = res.headers.get('content-type')?.startsWith('application/json') ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error || `${res.status} ${res.statusText}`);
  return body;
}

const params = (o) => new URLSearchParams(o).toString();

// The address of one artifact's bytes: mode download, inline (images) or preview.
export const fileUrl = (a, mode) => '/file?' + params({ run: a.run, exp: a.exp, path: a.path, mode });

export const getStore = () => api('/api/store');
export const getRuns = (fresh) => api('/api/runs' + (fresh ? '?fresh=1' : ''));
export const getExperiments = (run) => api('/api/experiments?' + params({ run }));
export const newLink = (a) => api('/api/link?' + params({ run: a.run, exp: a.exp, path: a.path }), { method: 'POST' });

// A text artifact's first 64 KiB, and its whole size (the X-Grid-Size header).
export async function getPreview(a) {
  const res = await fetch(fileUrl(a, 'preview'), { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  return { sizeHeader: res.headers.get('x-grid-size'), bytes: await res.arrayBuffer() };
}

// Artifact lists by experiment, read once (with each artifact's run and experiment), and errors passed to warn.
const lists = new Map();
export async function getArtifacts(run, exp, warn) {
  const k = `${run}/${exp}`;
  if (!lists.has(k)) {
    const data = await api('/api/artifacts?' + params({ run, exp }));
    for (const e of data.errors) warn(e);
    lists.set(k, data.artifacts.map((a) => ({ ...a, run, exp })));
  }
  return lists.get(k);
}

// The curves of one experiment, read once; a failure is kept as { error } until read again.
const metrics = new Map();
export function getMetrics(run, exp) {
  const k = `${run}\u0000${exp}`;
  if (!metrics.has(k)) {
    metrics.set(k, api('/api/metrics?' + params({ run, exp })).catch((e) => { metrics.delete(k); return { error: e.message }; }));
  }
  return metrics.get(k);
}

// What was read of an experiment goes (a live run's lists and curves change); with no arguments, everything.
export function forget(run, exp) {
  if (run === undefined) { lists.clear(); metrics.clear(); return; }
  lists.delete(`${run}/${exp}`);
  metrics.delete(`${run}\u0000${exp}`);
}
