// The page's state and its named updates (src/GridArtifacts.Core/Sharing/Page/state.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createState, PAGE } from '../../src/GridArtifacts.Core/Sharing/Page/state.js';

const keyOf = (a) => `${a.exp}/${a.path}`;

test('opening a run ticks the experiments asked for and forgets the last run', () => {
  const s = createState();
  s.openRun('r1', ['exp1']);
  s.setExperiments([{ name: 'exp0' }, { name: 'exp1' }]);
  s.setArtifacts([{ exp: 'exp1', path: 'a' }], keyOf);
  s.pick('exp1/a', true);
  s.openRun('r2', []);
  assert.equal(s.run, 'r2');
  assert.deepEqual(s.experiments, []);
  assert.deepEqual(s.artifacts, []);
  assert.equal(s.isSelected('exp1/a'), false);
  assert.equal(s.selectedExpCount(), 0);
});

test('a lone experiment is ticked when none is; not when one is asked for, nor on a refresh', () => {
  const s = createState();
  s.openRun('r', []);
  s.setExperiments([{ name: 'exp0' }], { tickSingle: true });
  assert.deepEqual(s.selectedExps(), ['exp0']);
  s.openRun('r', []);
  s.setExperiments([{ name: 'exp0' }]);
  assert.deepEqual(s.selectedExps(), []);
});

test("ticked experiments are listed in the experiments' order; names not listed count but are not listed", () => {
  const s = createState();
  s.openRun('r', ['exp2', 'exp9', 'exp0']);
  s.setExperiments([{ name: 'exp0' }, { name: 'exp1' }, { name: 'exp2' }]);
  assert.deepEqual(s.selectedExpNames(), ['exp0', 'exp2']);
  assert.equal(s.selectedExpCount(), 3);
  s.tickExperiment('exp1', true);
  s.tickExperiment('exp9', false);
  assert.deepEqual(s.selectedExpNames(), ['exp0', 'exp1', 'exp2']);
});

test('sorting by the same column again turns the order round', () => {
  const s = createState();
  s.sortBy('metric:loss');
  assert.deepEqual(s.sort, { key: 'metric:loss', dir: 1 });
  s.sortBy('metric:loss');
  assert.deepEqual(s.sort, { key: 'metric:loss', dir: -1 });
  s.sortBy('name');
  assert.deepEqual(s.sort, { key: 'name', dir: 1 });
});

test('a new artifact list drops the picks of artifacts no longer listed', () => {
  const s = createState();
  const a = { exp: 'exp0', path: 'a' }, b = { exp: 'exp0', path: 'b' };
  s.setArtifacts([a, b], keyOf);
  s.pick(keyOf(a), true);
  s.pick(keyOf(b), true);
  assert.deepEqual(s.selectedArtifacts(keyOf), [a, b]);
  s.setArtifacts([b], keyOf);
  assert.equal(s.isSelected(keyOf(a)), false);
  assert.deepEqual(s.selectedArtifacts(keyOf), [b]);
});

test('lists grow a page at a time and start again at one', () => {
  const s = createState();
  s.showMoreRuns();
  s.showMoreArtifacts();
  s.showMoreArtifacts();
  assert.equal(s.runLimit, 2 * PAGE);
  assert.equal(s.artifactLimit, 3 * PAGE);
  s.resetRunLimit();
  s.resetArtifactLimit();
  assert.equal(s.runLimit, PAGE);
  assert.equal(s.artifactLimit, PAGE);
});

test('the state changes only through its updates', () => {
  const s = createState();
  assert.throws(() => { 'use strict'; s.run = 'x'; }, TypeError);
  s.setRuns([{ name: 'a', active: false }, { name: 'b', active: true }]);
  assert.equal(s.anyRunActive(), true);
  assert.equal(s.isRunActive('a'), false);
});
