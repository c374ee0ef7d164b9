// The chart's scales and ticks (src/GridArtifacts.Core/Sharing/Page/scale.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawable, extent, linear, niceStep, plotHeightFor, stepAxis, tickText, ticksOf, valueAxis } from '../../src/GridArtifacts.Core/Sharing/Page/scale.js';

const isRound = (step) => {
  const f = step / 10 ** Math.floor(Math.log10(step) + 1e-12);
  return [1, 2, 5, 10].some((r) => Math.abs(f - r) < 1e-9);
};

test('extent: none is [0, 1]; one point or equal values get a span of 1 around them', () => {
  assert.deepEqual(extent([]), [0, 1]);
  assert.deepEqual(extent([3]), [2.5, 3.5]);
  assert.deepEqual(extent([-2, -2, -2]), [-2.5, -1.5]);
  assert.deepEqual(extent([5, -3, 1e9, 0]), [-3, 1e9]);
});

test('extent reads more values than a call may pass as arguments', () => {
  const many = Float64Array.from({ length: 300000 }, (_, i) => i - 1000);
  assert.deepEqual(extent(many), [-1000, 298999]);
});

test('steps are 1, 2 or 5 times a power of ten, from 1e-9 to 1e9', () => {
  for (const span of [1e-9, 3e-9, 7e-7, 0.3, 1, 4.2, 99, 12345, 1e9, 7.7e9]) {
    for (const count of [2, 3, 5, 10]) {
      const step = niceStep(span, count);
      assert.ok(step > 0 && isRound(step), `step ${step} for ${span}/${count}`);
      // About `count` of them over the span: never fewer than half, never more than twice and a half.
      const n = span / step;
      assert.ok(n >= count / 2.5 && n <= count * 2.5, `${n} steps for ${span}/${count}`);
    }
  }
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(1, 4), 0.2);
  assert.equal(niceStep(1, 0), 1); // count under 1 counts as 1
});

test('ticks are whole multiples of the step, within the range, without float dust', () => {
  assert.deepEqual(ticksOf(0, 1, 0.1).map((v) => tickText(v, 0.1)), ['0.0', '0.1', '0.2', '0.3', '0.4', '0.5', '0.6', '0.7', '0.8', '0.9', '1.0']);
  assert.ok(ticksOf(0, 1, 0.1).includes(3 * 0.1)); // computed as k * step
  assert.deepEqual(ticksOf(-7, 7, 5), [-5, 0, 5]);
  assert.deepEqual(ticksOf(0.15, 0.35, 0.1).length, 2);
});

test('ticks stop at 50, and a step that is no step gives none', () => {
  assert.equal(ticksOf(1e17, 1e17 + 1e3, 1).length, 50);
  assert.deepEqual(ticksOf(0, 1, 0), []);
  assert.deepEqual(ticksOf(0, 1, -1), []);
  assert.deepEqual(ticksOf(0, 1, NaN), []);
  assert.deepEqual(ticksOf(0, 1, Infinity), []);
});

test('tick labels carry as many decimals as the step, and big or tiny values in short form', () => {
  assert.equal(tickText(2, 1), '2');
  assert.equal(tickText(0.5, 0.5), '0.5');
  assert.equal(tickText(0.25, 0.05), '0.25');
  assert.equal(tickText(-0.2, 0.2), '-0.2');
  assert.equal(tickText(3e-9, 1e-9), '3e-9');
  assert.equal(tickText(2e9, 1e9), '2000000000');
  assert.equal(tickText(2e15, 1e15), '2000000000000000');
  assert.equal(tickText(1234567e15, 1e15), '1.23457e+21');
});

test('the value axis ends on ticks around the data, also for one value, negatives and 1e-9..1e9', () => {
  for (const [lo, hi] of [extent([0.7]), [-3.2, -0.4], [1e-9, 9e-9], [-1e9, 1e9], [0.001, 0.0013], extent([42, 42])]) {
    const axis = valueAxis(lo, hi, 5);
    assert.ok(axis.from <= lo + Math.abs(lo) * 1e-12 && axis.to >= hi - Math.abs(hi) * 1e-12, `[${axis.from}, ${axis.to}] holds [${lo}, ${hi}]`);
    assert.ok(axis.ticks.length >= 2 && axis.ticks.length <= 15, `${axis.ticks.length} ticks for [${lo}, ${hi}]`);
    assert.ok(Math.abs(axis.ticks[0] - axis.from) < axis.step * 1e-6);
    assert.ok(Math.abs(axis.ticks.at(-1) - axis.to) < axis.step * 1e-6);
    assert.ok(isRound(axis.step));
  }
});

test('the step axis ends where the data ends, with its ticks inside', () => {
  const axis = stepAxis(3, 997, 6);
  assert.equal(axis.from, 3);
  assert.equal(axis.to, 997);
  assert.deepEqual(axis.ticks, [200, 400, 600, 800]);
});

test('a linear map sends the ends of its domain to the ends of its range, either way round', () => {
  const sy = linear(-1, 3, 200, 0);
  assert.equal(sy(-1), 200);
  assert.equal(sy(3), 0);
  assert.equal(sy(1), 100);
  const sx = linear(1e-9, 2e-9, 10, 110);
  assert.ok(Math.abs(sx(1.5e-9) - 60) < 1e-9);
});

test('the plot height follows the width within its bounds', () => {
  assert.equal(plotHeightFor(100, 180, 300), 180);
  assert.equal(plotHeightFor(600, 180, 300), 216);
  assert.equal(plotHeightFor(5000, 180, 300), 300);
});

test('only points with two finite coordinates are drawn', () => {
  assert.deepEqual(drawable([[1, 2], [NaN, 1], [2, Infinity], [3, null], [4, -5]]), [[1, 2], [4, -5]]);
  assert.deepEqual(drawable(undefined), []);
});
