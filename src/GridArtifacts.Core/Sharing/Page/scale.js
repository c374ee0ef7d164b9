// The chart's numbers: extents, round steps, ticks, their labels and the linear maps from values to pixels.
// Pure (tests/page/scale.test.mjs); chart.js draws with them.

// The smallest and largest of values; [0, 1] for none, and a span of 1 around a single value.
// A loop, not Math.min(...values): many experiments of 2,000 points each pass the limit of a call's arguments.
export function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

// Round steps for an axis: 1, 2 or 5 times a power of ten, about `count` of them over the span.
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
}

// Tick values from lo to hi, a step apart, each a whole multiple of it (computed as one, so no 0.30000000000000004).
// At most 50: values too large for their spread to be told apart (1e17 and 1e17 + 1) get no endless loop.
export function ticksOf(lo, hi, step) {
  const values = [];
  if (!(step > 0 && Number.isFinite(step))) return values;
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && values.length < 50; k++) values.push(k * step);
  return values;
}

// A tick's label: as many decimals as the step has, the same for every tick of the axis.
export function tickText(value, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return decimals <= 8 && Math.abs(value) < 1e15 ? value.toFixed(decimals) : String(Number(value.toPrecision(6)));
}

// The value axis: about `count` round steps over [lo, hi], widened so that it ends on ticks.
export function valueAxis(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  const [from, to] = [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step];
  return { from, to, step, ticks: ticksOf(from, to, step) };
}

// The step axis: about `count` round steps over [lo, hi], the axis ending where the data ends.
export function stepAxis(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  return { from: lo, to: hi, step, ticks: ticksOf(lo, hi, step) };
}

// A linear map from [d0, d1] onto [r0, r1] (r1 < r0 turns it upside down, as a y axis is).
export const linear = (d0, d1, r0, r1) => (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);

// The plot's height for a chart width: it follows the width within bounds.
export const plotHeightFor = (width, minPlot, maxPlot) => Math.round(Math.min(maxPlot, Math.max(minPlot, width * 0.36)));

// The points of a series that can be drawn: both coordinates finite numbers.
export const drawable = (points) => (points || []).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
