// Sizes, times and values as the page writes them (src/GridArtifacts.Core/Sharing/Page/format.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endingText, fmt, jobText, size, sizeHeader, when } from '../../src/GridArtifacts.Core/Sharing/Page/format.js';

test('sizes are 1,024-based with one decimal at most, as the cmdlets write them', () => {
  assert.equal(size(0), '0 B');
  assert.equal(size(1023), '1023 B');
  assert.equal(size(1024), '1 KiB');
  assert.equal(size(200000), '195.3 KiB');
  assert.equal(size(3 * 1024 ** 2), '3 MiB');
  assert.equal(size(1024 ** 5 * 5000), '5000 PiB'); // past the last unit, the number grows
  assert.equal(size(Number.MAX_SAFE_INTEGER), '8 PiB');
});

test('times are local, to the minute, and nothing for none', () => {
  const t = new Date(2024, 0, 5, 7, 3, 59);
  assert.equal(when(t.toISOString()), '2024-01-05 07:03');
  assert.equal(when(null), '');
  assert.equal(when(''), '');
});

test('values in table cells get four significant digits; text stays text', () => {
  assert.equal(fmt(0.123456), '0.1235');
  assert.equal(fmt(123456789), '123500000');
  assert.equal(fmt(1e-9), '1e-9');
  assert.equal(fmt(NaN), 'NaN');
  assert.equal(fmt('adam'), 'adam');
});

test('how an experiment ended: a signal before an exit code before a reason', () => {
  assert.equal(endingText({ signal: 'SIGTERM', exitCode: 143 }), 'SIGTERM');
  assert.equal(endingText({ exitCode: 3 }), 'exit 3');
  assert.equal(endingText({ exitCode: 0 }), null);
  assert.equal(endingText({ reason: 'cancelled before start' }), 'before start');
});

test("a cluster run's job, with its cluster when named", () => {
  assert.deepEqual(jobText({ scheduler: 'Slurm', job: '42', cluster: 'gpu' }), { short: 'Slurm 42', title: 'Slurm job 42 on cluster gpu' });
  assert.equal(jobText({}), null);
});

test('the size header is a whole count, huge ones included, or NaN', () => {
  assert.equal(sizeHeader('65536'), 65536);
  assert.equal(sizeHeader('9007199254740993'), 9007199254740992); // past 2^53 a count rounds, it does not fail
  assert.ok(Number.isNaN(sizeHeader(null)));
  assert.ok(Number.isNaN(sizeHeader('')));
  assert.ok(Number.isNaN(sizeHeader('-1')));
  assert.ok(Number.isNaN(sizeHeader('1e3')));
});
