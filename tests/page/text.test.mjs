// Names, filters, sorting and the address's hash (src/GridArtifacts.Core/Sharing/Page/text.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cell, compare, hashOf, lineNames, matcher, own, parseHash, pathParts, sortExperiments, tagMatcher, union } from '../../src/GridArtifacts.Core/Sharing/Page/text.js';

test('own reads own keys only: __proto__ and constructor are names like any other', () => {
  const metrics = JSON.parse('{"__proto__": 1, "loss": 2}');
  assert.equal(own(metrics, '__proto__'), 1);
  assert.equal(own({ loss: 2 }, 'constructor'), undefined);
  assert.equal(own(null, 'loss'), undefined);
  assert.deepEqual(union([{ b: 1, a: 1 }, null, { c: 1, a: 2 }]), ['a', 'b', 'c']);
});

test('cells by sort key: parameters, metrics, tags and plain fields', () => {
  const x = { name: 'exp1', parameters: { lr: 0.1, 'a:b': 'x' }, metrics: { val_loss: 0.3 }, tags: ['keep', 'best'] };
  assert.equal(cell(x, 'param:lr'), 0.1);
  assert.equal(cell(x, 'param:a:b'), 'x'); // only the first colon splits
  assert.equal(cell(x, 'metric:val_loss'), 0.3);
  assert.equal(cell(x, 'metric:missing'), undefined);
  assert.equal(cell(x, 'tags'), 'keep best');
  assert.equal(cell({ ...x, tags: [] }, 'tags'), undefined);
  assert.equal(cell(x, 'name'), 'exp1');
});

test('compare: numbers as numbers, names with digit runs in numeric order', () => {
  assert.ok(compare(9, 10) < 0);
  assert.ok(compare('9', '10') < 0);
  assert.ok(compare(-1e9, 1e-9) < 0);
  assert.ok(compare('exp2', 'exp10') < 0);
  assert.ok(compare('', '1') !== 0);
  assert.equal(compare(3, '3'), 0);
});

test('sorting puts missing values last in both directions', () => {
  const xs = [{ name: 'a', metrics: { m: 2 } }, { name: 'b', metrics: {} }, { name: 'c', metrics: { m: -1 } }, { name: 'd', metrics: { m: 10 } }];
  const names = (sort) => sortExperiments(xs, sort).map((x) => x.name);
  assert.deepEqual(names({ key: 'metric:m', dir: 1 }), ['c', 'a', 'd', 'b']);
  assert.deepEqual(names({ key: 'metric:m', dir: -1 }), ['d', 'a', 'c', 'b']);
  assert.equal(sortExperiments(xs, null), xs);
  assert.deepEqual(xs.map((x) => x.name), ['a', 'b', 'c', 'd']); // the list itself is not reordered
});

test('line names add only the parameters that differ between the charted experiments', () => {
  const xs = [
    { name: 'exp0', parameters: { lr: 0.1, seed: 1, layers: [2, 3] } },
    { name: 'exp1', parameters: { lr: 0.01, seed: 1, layers: [2, 3] } },
    { name: 'exp2', parameters: { seed: 1, layers: [4] } },
  ];
  assert.deepEqual(lineNames(['exp0', 'exp1'], xs), ['exp0 lr=0.1', 'exp1 lr=0.01']);
  assert.deepEqual(lineNames(['exp0', 'exp2'], xs), ['exp0 layers=[2,3] lr=0.1', 'exp2 layers=[4]']);
  assert.deepEqual(lineNames(['exp0'], xs), ['exp0']);
  assert.deepEqual(lineNames(['gone'], xs), ['gone']);
});

test('a filter without wildcards is a case-insensitive substring', () => {
  const m = matcher('  Loss ');
  assert.ok(m('val_LOSS.csv'));
  assert.ok(!m('acc.csv'));
  assert.ok(matcher('')('anything'));
});

test('a filter with * and ? matches the whole path or its last part, and other characters literally', () => {
  assert.ok(matcher('*.csv')('logs/metrics.csv'));
  assert.ok(!matcher('*.csv')('logs/metrics.csv.bak'));
  assert.ok(matcher('metrics.?sv')('a/b/metrics.tsv'));
  assert.ok(!matcher('a.c*')('abc'));             // the dot is a dot
  assert.ok(matcher('(x)+[y]*')('(x)+[y]z'));      // and brackets are brackets
  assert.ok(matcher('logs/*')('logs/a/b.txt'));
});

test('a tag filter is the whole tag unless it has a wildcard', () => {
  assert.ok(tagMatcher('Keep')('keep'));
  assert.ok(!tagMatcher('keep')('keeper'));
  assert.ok(tagMatcher('keep*')('keeper'));
});

test('paths break only after a slash', () => {
  assert.deepEqual(pathParts('lightning_logs/version_0/hparams.yaml'), ['lightning_logs/', 'version_0/', 'hparams.yaml']);
  assert.deepEqual(pathParts('model.pt'), ['model.pt']);
});

test('the hash names a run and its ticked experiments, and reads back the same', () => {
  assert.equal(hashOf('my-run', ['exp0', 'exp2']), '#run=my-run&exp=exp0%2Cexp2');
  assert.equal(hashOf(null, []), '#');
  assert.deepEqual(parseHash('#run=my-run&exp=exp0,exp2'), { run: 'my-run', exps: ['exp0', 'exp2'] });
  assert.deepEqual(parseHash(hashOf('my-run', ['exp0', 'exp2'])), { run: 'my-run', exps: ['exp0', 'exp2'] });
  assert.deepEqual(parseHash(''), { run: null, exps: [] });
  assert.deepEqual(parseHash('#exp=,exp1,'), { run: null, exps: ['exp1'] });
});
