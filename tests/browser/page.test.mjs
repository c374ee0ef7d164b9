// The artifacts page in a real browser (Debian's Chromium, headless, driven by playwright-core),
// against the module's own server on both stores. Each store is filled by Start-PageFixture.ps1.
//
//   GRID_TEST_MODULE_PATH   the staged module (out/GridArtifacts)
//   GRID_TEST_S3_ENDPOINT   the S3-compatible server build.ps1 started (the s3 suite needs it)
//   GRID_TEST_SCREENSHOTS   a folder for screenshots of the page (optional)
//   GRID_TEST_DOCS          a folder for the pictures in docs/artifacts-page.md, from the local fixture (optional)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const modulePath = process.env.GRID_TEST_MODULE_PATH || join(root, 'out', 'GridArtifacts');
const shots = process.env.GRID_TEST_SCREENSHOTS;
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// Chromium as this machine needs it: no sandbox as root, no background traffic to a closed network.
const launchOptions = {
  executablePath: process.env.GRID_TEST_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
};

/** Starts a fixture store and its page; resolves with what it printed. */
function startFixture(kind) {
  return new Promise((resolve, reject) => {
    const child = spawn('dotnet', ['pwsh', '-NoProfile', '-NonInteractive', '-File', join(here, 'Start-PageFixture.ps1'),
      '-ModulePath', modulePath, '-Kind', kind], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n').slice(0, -1).find((l) => l.startsWith('{'));
      if (line && !child.announced) {
        child.announced = true;
        resolve({ ...JSON.parse(line), child });
      }
    });
    child.on('exit', (code) => reject(new Error(`the ${kind} fixture exited (${code}) before its page was up: ${out}`)));
  });
}

function stopFixture(fixture) {
  if (!fixture) return Promise.resolve();
  return new Promise((resolve) => {
    fixture.child.removeAllListeners('exit');
    fixture.child.on('exit', resolve);
    fixture.child.stdin.end('stop\n');
  });
}

/** Entries of a zip (stored or deflated), read from its central directory. */
function unzip(buffer) {
  let eocd = buffer.length - 22;
  while (eocd >= 0 && buffer.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, 'not a zip');
  const count = buffer.readUInt16LE(eocd + 10);
  let at = buffer.readUInt32LE(eocd + 16);
  const entries = {};
  for (let i = 0; i < count; i++) {
    const method = buffer.readUInt16LE(at + 10);
    const compressed = buffer.readUInt32LE(at + 20);
    const nameLength = buffer.readUInt16LE(at + 28);
    const extra = buffer.readUInt16LE(at + 30);
    const comment = buffer.readUInt16LE(at + 32);
    const local = buffer.readUInt32LE(at + 42);
    const name = buffer.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    const dataAt = local + 30 + buffer.readUInt16LE(local + 26) + buffer.readUInt16LE(local + 28);
    const data = buffer.subarray(dataAt, dataAt + compressed);
    entries[name] = method === 8 ? inflateRawSync(data) : Buffer.from(data);
    at += 46 + nameLength + extra + comment;
  }
  return entries;
}

async function openPage(browser, fixture) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 900 } });
  const origin = new URL(fixture.baseUrl).origin;
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const alarms = { dialogs: [], pwned: [] };
  page.on('dialog', (d) => { alarms.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  context.on('request', (r) => { if (r.url().includes('/pwned')) alarms.pwned.push(r.url()); });
  await page.goto(fixture.pageUrl);
  await page.waitForSelector('body[data-ready="true"]');
  return { context, page, alarms };
}

const artifactRow = (page, exp, path) => page.locator(`#artifacts tr[data-exp="${exp}"][data-path="${path}"]`);

/** Opens vision-sweep (by a click, if it is not open) with just these experiments ticked, and waits for their artifacts. */
async function openSweep(page, exps) {
  if (await page.locator('#finished-runs tr.selected[data-run="vision-sweep"]').count() === 0) await page.click('#finished-runs tr[data-run="vision-sweep"]');
  await page.waitForSelector('#experiments input[value="exp2"]');
  for (const exp of ['exp0', 'exp1', 'exp2']) await page.setChecked(`#experiments input[value="${exp}"]`, exps.includes(exp));
  await page.waitForFunction((want) => [...new Set([...document.querySelectorAll('#artifacts tr')].map((r) => r.dataset.exp))].sort().join() === want, exps.join());
}

/** Measures the page until two readings 150 ms apart agree (a resize redraws the chart a moment later). */
async function settled(page, measure, arg) {
  let last;
  for (let i = 0; i < 40; i++) {
    const now = await page.evaluate(measure, arg);
    if (last !== undefined && JSON.stringify(now) === JSON.stringify(last)) return now;
    last = now;
    await page.waitForTimeout(150);
  }
  return last;
}

/** Polls what the page shows until it is what is wanted (or 10 s pass), then compares. */
async function expectShown(page, measure, want, message) {
  let got;
  for (const started = Date.now(); Date.now() - started < 10000; await page.waitForTimeout(100)) {
    got = await page.evaluate(measure);
    if (JSON.stringify(got) === JSON.stringify(want)) break;
  }
  assert.deepEqual(got, want, message);
}

/** Tick values are evenly spaced by 1, 2 or 5 times a power of ten, each a multiple of that step. */
function assertNiceTicks(values, axis) {
  assert.ok(values.length >= 3 && values.length <= 11, `${axis} ticks: ${values}`);
  const step = values[1] - values[0];
  const power = 10 ** Math.floor(Math.log10(step));
  assert.ok([1, 2, 5, 10].some((m) => Math.abs(step / power - m) < 1e-6), `${axis} tick step ${step}: ${values}`);
  for (let i = 1; i < values.length; i++) assert.ok(Math.abs(values[i] - values[i - 1] - step) < step * 1e-6, `${axis} ticks evenly spaced: ${values}`);
  for (const v of values) assert.ok(Math.abs(v / step - Math.round(v / step)) < 1e-6, `${axis} tick ${v} a multiple of ${step}`);
}

/** The lines a name cell renders as: its characters grouped by the line box they sit on. */
function renderedLines(cell) {
  const lines = [];
  let top = null;
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++) {
      const length = node.data.codePointAt(i) > 0xffff ? 2 : 1;
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + length);
      const rect = range.getBoundingClientRect();
      if (top === null || rect.top > top + rect.height / 2) { lines.push(''); top = rect.top; }
      lines[lines.length - 1] += node.data.slice(i, i + length);
      i += length - 1;
    }
  }
  return lines;
}

for (const kind of ['local', 's3']) {
  describe(`the artifacts page (${kind} store)`, { skip: kind === 's3' && !process.env.GRID_TEST_S3_ENDPOINT && 'no S3 test server' }, () => {
    let fixture;
    let browser;
    let view;

    before(async () => {
      fixture = await startFixture(kind);
      browser = await chromium.launch(launchOptions);
      view = await openPage(browser, fixture);
    });

    after(async () => {
      await browser?.close();
      await stopFixture(fixture);
    });

    test('refuses a request without the token, and takes the token out of the address', async () => {
      for (const path of ['', 'api/runs', 'app.js', 'file?run=vision-sweep&exp=exp0&path=metrics.csv']) {
        const res = await fetch(new URL(path, fixture.baseUrl), { redirect: 'manual' });
        assert.equal(res.status, 401, path);
        assert.doesNotMatch(await res.text(), /vision-sweep|epoch/);
      }
      const stranger = await browser.newPage();
      await stranger.goto(fixture.baseUrl);
      assert.match(await stranger.textContent('body'), /needs the address/);
      await stranger.close();
      assert.equal(new URL(view.page.url()).search, '', 'the token stays out of the address bar');
    });

    test('lists active and finished runs apart, newest first', async () => {
      const { page } = view;
      await page.waitForSelector('#active-runs tr[data-run="live-run"]');
      const finished = await page.locator('#finished-runs tr').evaluateAll((rows) => rows.map((r) => r.dataset.run));
      assert.deepEqual(finished, ['vision-sweep', 'older-run', 'hostile-run', 'crashed-run']);
      assert.equal(await page.locator('#finished-runs tr[data-run="vision-sweep"] .status').textContent(), 'Succeeded');
      // A protected run is marked, and only that one.
      assert.equal(await page.locator('#finished-runs tr[data-run="older-run"] .protected').textContent(), 'protected');
      assert.equal(await page.locator('#finished-runs tr[data-run="vision-sweep"] .protected').count(), 0);
    });

    test('clicks through a run to an experiment and lists its artifacts', async () => {
      const { page } = view;
      await page.click('#finished-runs tr[data-run="vision-sweep"]');
      await page.waitForSelector('#experiments input[value="exp1"]');
      assert.equal(await page.locator('#artifacts tr').count(), 0, 'nothing is listed before an experiment is chosen');
      await page.check('#experiments input[value="exp0"]');
      await page.waitForSelector('#artifacts tr[data-path="checkpoints/model.ckpt"]');
      const paths = await page.locator('#artifacts tr').evaluateAll((rows) => rows.map((r) => `${r.dataset.exp}/${r.dataset.path}`));
      assert.deepEqual(paths.sort(), Object.keys(fixture.hashes).filter((k) => k.startsWith('vision-sweep/exp0/')).map((k) => k.slice('vision-sweep/'.length)).sort());
      await page.check('#experiments input[value="exp1"]');
      await page.waitForSelector('#artifacts tr[data-exp="exp1"]');
      assert.equal(await page.locator('#artifacts tr').count(), 12);
      assert.match(page.url(), /#run=vision-sweep&exp=exp0%2Cexp1$/);
    });

    test('filters artifacts by name', async () => {
      const { page } = view;
      await page.fill('#artifact-filter', '*.png');
      await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 2);
      assert.equal(await page.textContent('#artifact-count'), '2 of 12 artifacts');
      await page.fill('#artifact-filter', 'MODEL');
      await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 2);
      await page.fill('#artifact-filter', '');
      await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 12);
    });

    test('writes sizes in KiB, MiB and GiB, as the cmdlets do', async () => {
      const { page } = view;
      await openSweep(page, ['exp0', 'exp1']);
      const sizeOf = (exp, path) => artifactRow(page, exp, path).locator('td.num').textContent();
      assert.equal(await sizeOf('exp0', 'checkpoints/model.ckpt'), '3 MiB'); // 3 MiB + 17 bytes
      assert.equal(await sizeOf('exp1', 'checkpoints/model.ckpt'), '195.3 KiB'); // 200,000 bytes
      const sizes = await page.evaluate(() => [...document.querySelectorAll('#artifacts td.num, #experiments td.num')].map((td) => td.textContent)
        .concat([...document.querySelectorAll('[title]')].map((e) => e.title)).filter((t) => /\d\s*[KMGTP]i?B\b/.test(t)));
      assert.ok(sizes.length >= 5, `sizes found: ${sizes}`);
      for (const t of sizes) assert.match(t, /(^|\s)\d+(\.\d)? (KiB|MiB|GiB|TiB)\b/, `a size as the cmdlets write it: ${t}`);
      assert.doesNotMatch(await page.innerText('body'), /\d ?[KMGT]B\b/);
    });

    test('downloads one artifact, byte-exact', async () => {
      const { page } = view;
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        artifactRow(page, 'exp0', 'checkpoints/model.ckpt').locator('a.download').click(),
      ]);
      assert.equal(download.suggestedFilename(), 'model.ckpt');
      const bytes = readFileSync(await download.path());
      assert.equal(sha256(bytes), fixture.hashes['vision-sweep/exp0/checkpoints/model.ckpt']);
    });

    test('downloads the selected artifacts as one zip, byte-exact', async () => {
      const { page } = view;
      await artifactRow(page, 'exp0', 'checkpoints/model.ckpt').locator('input.pick').check();
      await artifactRow(page, 'exp1', 'checkpoints/model.ckpt').locator('input.pick').check();
      await artifactRow(page, 'exp0', 'metrics.csv').locator('input.pick').check();
      assert.equal(await page.textContent('#download-selected'), 'Download selected (3)');
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-selected')]);
      assert.equal(download.suggestedFilename(), 'vision-sweep.zip');
      const entries = unzip(readFileSync(await download.path()));
      const got = Object.fromEntries(Object.entries(entries).map(([name, data]) => [name, sha256(data)]));
      assert.deepEqual(got, {
        'vision-sweep/exp0/checkpoints/model.ckpt': fixture.hashes['vision-sweep/exp0/checkpoints/model.ckpt'],
        'vision-sweep/exp1/checkpoints/model.ckpt': fixture.hashes['vision-sweep/exp1/checkpoints/model.ckpt'],
        'vision-sweep/exp0/metrics.csv': fixture.hashes['vision-sweep/exp0/metrics.csv'],
      });
      if (shots) await page.screenshot({ path: join(shots, `artifacts-page-${kind}.png`) });
    });

    test('lists, downloads, zips and links names from every plane, byte-exact, NFC and NFD apart', async () => {
      const { page } = view;
      await page.click('#finished-runs tr[data-run="older-run"]');
      await page.check('#experiments input[value="exp0"]');
      const names = Object.keys(fixture.hashes).filter((k) => k.startsWith('older-run/exp0/')).map((k) => k.slice('older-run/exp0/'.length));
      assert.equal(names.length, 5);
      await page.waitForFunction((n) => document.querySelectorAll('#artifacts tr[data-exp="exp0"]').length === n, names.length);
      const shown = await page.locator('#artifacts tr[data-exp="exp0"]').evaluateAll((rows) => rows.map((r) => r.dataset.path));
      assert.deepEqual(shown.sort(), [...names].sort());
      const row = (name) => artifactRow(page, 'exp0', name); // no name here holds a quote or a backslash
      const emoji = names.find((n) => n.startsWith('loss-'));
      const [download] = await Promise.all([page.waitForEvent('download'), row(emoji).locator('a.download').click()]);
      assert.equal(download.suggestedFilename(), emoji);
      assert.equal(sha256(readFileSync(await download.path())), fixture.hashes[`older-run/exp0/${emoji}`]);
      for (const name of names) await row(name).locator('input.pick').check();
      const [zip] = await Promise.all([page.waitForEvent('download'), page.click('#download-selected')]);
      const got = Object.fromEntries(Object.entries(unzip(readFileSync(await zip.path()))).map(([name, data]) => [name, sha256(data)]));
      assert.deepEqual(got, Object.fromEntries(names.map((n) => [`older-run/exp0/${n}`, fixture.hashes[`older-run/exp0/${n}`]])));
      const nested = names.find((n) => n.endsWith('.csv'));
      await row(nested).locator('button.copy-link').click();
      await page.waitForSelector('#toast:not([hidden])');
      const link = await page.evaluate(() => navigator.clipboard.readText());
      const res = await fetch(link);
      assert.equal(res.status, 200);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), fixture.hashes[`older-run/exp0/${nested}`]);
      for (const name of names) await row(name).locator('input.pick').uncheck();
      await page.click('#finished-runs tr[data-run="vision-sweep"]');
      await page.check('#experiments input[value="exp0"]');
      await page.check('#experiments input[value="exp1"]');
      await page.waitForSelector('#artifacts tr[data-exp="exp1"]');
    });

    test('copies a 24-hour link that fetches the exact bytes', async () => {
      const { page } = view;
      await artifactRow(page, 'exp0', 'checkpoints/model.ckpt').locator('button.copy-link').click();
      await page.waitForSelector('#toast:not([hidden])');
      assert.match(await page.textContent('#toast-text'), /copied/);
      const link = await page.evaluate(() => navigator.clipboard.readText());
      assert.equal(await page.inputValue('#toast-link'), link);
      if (kind === 's3') assert.match(link, /X-Amz-Expires=86400/);
      const res = await fetch(link);
      assert.equal(res.status, 200);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), fixture.hashes['vision-sweep/exp0/checkpoints/model.ckpt']);
    });

    test('shows images as thumbnails and full size', async () => {
      const { page } = view;
      const thumb = artifactRow(page, 'exp0', 'plots/loss.png').locator('td.thumb img');
      await thumb.scrollIntoViewIfNeeded();
      await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle());
      assert.equal(await thumb.evaluate((img) => img.naturalWidth), 96);
      await artifactRow(page, 'exp0', 'plots/loss.png').locator('button.preview').click();
      const full = page.locator('#preview-body img');
      await page.waitForFunction(() => { const i = document.querySelector('#preview-body img'); return i && i.complete && i.naturalWidth > 0; });
      assert.deepEqual(await full.evaluate((img) => [img.naturalWidth, img.naturalHeight]), [96, 64]);
      if (shots) await page.screenshot({ path: join(shots, `artifacts-page-preview-${kind}.png`) });
      await page.click('#preview-close');
    });

    test('previews text as its first lines and csv as a table, as text only', async () => {
      const { page } = view;
      await artifactRow(page, 'exp0', 'metrics.csv').locator('button.preview').click();
      await page.waitForSelector('#preview-body table');
      const cells = await page.locator('#preview-body table tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
      assert.deepEqual(cells, [['epoch', 'loss', 'accuracy'], ['1', '0.93', '0.61'], ['2', '0.52', '0.78'], ['3', '0.31', '0.88']]);
      await page.click('#preview-close');
      await artifactRow(page, 'exp0', 'train.log').locator('button.preview').click();
      await page.waitForSelector('#preview-body pre');
      const text = await page.textContent('#preview-body pre');
      assert.ok(text.startsWith('epoch 1 <b>done</b>\nepoch 2'), 'markup in a log is shown as text');
      assert.equal(text.split('\n').length, 200);
      assert.equal(await page.locator('#preview-body b').count(), 0);
      const shown = await page.innerText('#preview-body');
      await page.click('#preview-close');
      assert.match(shown, /\nFirst 200 lines of 6\.\d KiB\.$/);
    });

    test('previews a short text file as exactly its text, with nothing after it', async () => {
      const { page } = view;
      const path = 'lightning_logs/version_0/hparams.yaml';
      await openSweep(page, ['exp0', 'exp1']);
      const res = await page.request.get(new URL(`file?${new URLSearchParams({ run: 'vision-sweep', exp: 'exp1', path })}`, fixture.baseUrl).href);
      const bytes = await res.body();
      assert.equal(sha256(bytes), fixture.hashes[`vision-sweep/exp1/${path}`]);
      await artifactRow(page, 'exp1', path).locator('button.preview').click();
      await page.waitForSelector('#preview-body pre');
      const [shown, title] = [await page.innerText('#preview-body'), await page.textContent('#preview-title')];
      await page.click('#preview-close');
      // What the panel shows, all of it: the file's lines and nothing else.
      assert.equal(shown.trimEnd(), bytes.toString('utf8').trimEnd());
      assert.equal(title, `exp1/${path}`);
    });

    test('never runs a script carried by an SVG or HTML artifact', async () => {
      const { page, alarms, context } = view;
      const row = artifactRow(page, 'exp0', 'plots/evil.svg');
      await row.locator('button.preview').click();
      await page.waitForFunction(() => { const i = document.querySelector('#preview-body img'); return i && i.complete && i.naturalWidth > 0; });
      await page.click('#preview-close');
      // Opened directly, by someone who follows the image's address: served under a sandbox policy.
      const direct = await context.newPage();
      direct.on('dialog', (d) => { alarms.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
      const src = await row.locator('td.thumb img').getAttribute('src');
      const res = await direct.goto(new URL(src, fixture.baseUrl).href);
      assert.equal(res.status(), 200);
      const policy = res.headers()['content-security-policy'];
      const html = await direct.goto(new URL(`file?run=vision-sweep&exp=exp0&path=report.html&mode=inline`, fixture.baseUrl).href).catch((e) => e);
      assert.ok(html instanceof Error || html.headers()['content-disposition'].startsWith('attachment'), 'HTML comes only as a download');
      await direct.waitForTimeout(500);
      assert.notEqual(await direct.title(), 'pwned');
      await direct.close();
      assert.deepEqual(alarms.dialogs, [], 'no script showed a dialog');
      assert.deepEqual(alarms.pwned, [], 'no script made a request');
      assert.notEqual(await page.title(), 'pwned');
      assert.match(policy, /sandbox/);
    });

    test('shows how a failed experiment ended, and keeps what it wrote', async () => {
      const { page } = view;
      assert.equal(await page.locator('#finished-runs tr[data-run="crashed-run"] .status.Failed').textContent(), 'Failed');
      assert.equal(await page.locator('#finished-runs tr[data-run="crashed-run"] .ending').count(), 0, 'a Local run shows no job');
      await page.click('#finished-runs tr[data-run="crashed-run"]');
      await page.waitForSelector('#experiments tr[data-exp="exp0"] .status.Failed');
      assert.equal(await page.locator('#experiments tr[data-exp="exp0"] .ending').textContent(), 'exit 3');
      await page.check('#experiments input[value="exp0"]');
      await page.waitForSelector('#artifacts tr[data-path="partial.txt"]');
      const res = await page.request.get(new URL(`file?${new URLSearchParams({ run: 'crashed-run', exp: 'exp0', path: 'partial.txt' })}`, fixture.baseUrl).href);
      assert.equal(res.status(), 200);
      assert.equal(sha256(await res.body()), fixture.hashes['crashed-run/exp0/partial.txt']);
      await page.uncheck('#experiments input[value="exp0"]');
    });

    test('shows tags, filters the runs by tag, and marks protected runs', async () => {
      const { page } = view;
      const finished = () => page.locator('#finished-runs tr').evaluateAll((rows) => rows.map((r) => r.dataset.run));
      assert.deepEqual(await page.locator('#finished-runs tr[data-run="vision-sweep"] .tag').allTextContents(), ['keep']);
      assert.equal(await page.locator('#finished-runs tr[data-run="older-run"] .tag').count(), 0);
      assert.deepEqual(await page.locator('#finished-runs tr.protected').evaluateAll((rows) => rows.map((r) => r.dataset.run)), ['older-run']);
      await page.fill('#tag-filter', 'ke*');
      await page.waitForFunction(() => document.querySelectorAll('#finished-runs tr').length === 1);
      assert.deepEqual(await finished(), ['vision-sweep']);
      assert.equal(await page.locator('#active-runs tr').count(), 0, 'an untagged run is filtered out');
      await page.fill('#tag-filter', 'kee');   // the whole tag, as Get-GridRun -Tag reads it
      await page.waitForFunction(() => document.querySelectorAll('#finished-runs tr').length === 0);
      await page.fill('#tag-filter', '');
      await page.waitForFunction(() => document.querySelectorAll('#finished-runs tr').length === 4);
      // A tag's button sets the filter to it, and does not open the run.
      const before = page.url();
      await page.click('#finished-runs tr[data-run="vision-sweep"] button.tag');
      assert.equal(await page.inputValue('#tag-filter'), 'keep');
      assert.deepEqual(await finished(), ['vision-sweep']);
      assert.equal(page.url(), before);
      await page.fill('#tag-filter', '');
      await page.waitForFunction(() => document.querySelectorAll('#finished-runs tr').length === 4);
    });

    test('sorts the experiments by parameter and metric, numbers as numbers, missing values last', async () => {
      const { page } = view;
      await page.click('#finished-runs tr[data-run="vision-sweep"]');
      await page.waitForSelector('#experiments input[value="exp2"]');
      const order = () => page.locator('#experiments tr').evaluateAll((rows) => rows.map((r) => r.dataset.exp));
      const sortBy = async (column, expected, direction) => {
        await page.click(`#experiments-table th[data-sort="${column}"] button`);
        assert.deepEqual(await order(), expected, `${column} ${direction}`);
        assert.equal(await page.getAttribute(`#experiments-table th[data-sort="${column}"]`, 'aria-sort'), direction);
        const others = await page.locator('#experiments-table th[data-sort]').evaluateAll((ths, c) => ths.filter((t) => t.dataset.sort !== c).map((t) => t.getAttribute('aria-sort')), column);
        assert.ok(others.length > 0 && others.every((a) => a === 'none'), `only ${column} is sorted`);
      };
      assert.deepEqual(await order(), ['exp0', 'exp1', 'exp2']);
      await sortBy('param:batch', ['exp0', 'exp1', 'exp2'], 'ascending'); // 8, 16, 128 (as text: 128, 16, 8)
      await sortBy('param:batch', ['exp2', 'exp1', 'exp0'], 'descending');
      await sortBy('metric:val_loss', ['exp1', 'exp0', 'exp2'], 'ascending'); // 0.275, 0.3, 0.325
      await sortBy('metric:val_loss', ['exp2', 'exp0', 'exp1'], 'descending');
      await sortBy('param:lr', ['exp1', 'exp0', 'exp2'], 'ascending'); // exp2 has no lr
      await sortBy('param:lr', ['exp0', 'exp1', 'exp2'], 'descending');
      await sortBy('name', ['exp0', 'exp1', 'exp2'], 'ascending');
      const valLoss = await page.locator('#experiments-table').evaluate((t) => {
        const i = [...t.tHead.rows[0].cells].findIndex((c) => c.dataset.sort === 'metric:val_loss');
        return [...t.tBodies[0].rows].map((r) => r.cells[i].textContent);
      });
      assert.deepEqual(valLoss, ['0.3', '0.275', '0.325'], 'the last value of each');
    });

    test('charts a metrics.csv column over the steps for the selected experiments', async () => {
      const { page } = view;
      await page.waitForSelector('#experiments input[value="exp2"]');
      assert.equal(await page.locator('#experiments input:checked').count(), 0);
      assert.equal(await page.isHidden('#chart-column'), true, 'no empty metric list before an experiment is chosen');
      await page.check('#experiments input[value="exp0"]');
      await page.check('#experiments input[value="exp1"]');
      const lines = () => page.locator('#chart polyline.series').evaluateAll((ps) => ps.map((p) => ({ exp: p.dataset.exp, colour: p.classList[1], points: p.points.numberOfItems })));
      await page.waitForFunction(() => document.querySelectorAll('#chart polyline.series').length === 2);
      assert.equal(await page.inputValue('#chart-column'), 'val_loss');
      assert.deepEqual(await page.locator('#chart-column option').allTextContents(), ['epoch', 'train_loss', 'val_loss']);
      assert.deepEqual(await lines(), [{ exp: 'exp0', colour: 's0', points: 4 }, { exp: 'exp1', colour: 's1', points: 4 }]);
      assert.equal(await page.isVisible('#chart-column'), true);
      // Each line is named by its experiment and the parameters that differ between the charted ones.
      assert.deepEqual(await page.locator('#chart .legend text').allTextContents(), ['exp0 batch=8 lr=0.1', 'exp1 batch=16 lr=0.01']);
      assert.deepEqual(await page.locator('#chart .legend title').allTextContents(), ['lightning_logs/version_0/metrics.csv', 'lightning_logs/version_0/metrics.csv']);
      const ticks = async (axis) => (await page.locator(`#chart .tick.${axis}`).allTextContents()).map(Number);
      assertNiceTicks(await ticks('x'), 'x');
      const y = await ticks('y');
      assertNiceTicks(y, 'y');
      assert.ok(y[0] <= 0.275 && y.at(-1) >= 1, `the y ticks span val_loss from 0.275 to 1: ${y}`);
      assert.equal(await page.textContent('#chart .axis-label.x'), 'step');
      assert.equal(await page.textContent('#chart .axis-label.y'), 'val_loss');
      await page.selectOption('#chart-column', 'train_loss');
      await page.waitForFunction(() => document.querySelector('#chart polyline.series')?.points.numberOfItems === 8);
      assert.deepEqual((await lines()).map((l) => l.points), [8, 8]);
      assert.equal(await page.textContent('#chart .axis-label.y'), 'train_loss');
      assertNiceTicks(await ticks('y'), 'y');
      await page.check('#experiments input[value="exp2"]');
      await page.waitForFunction(() => document.querySelectorAll('#chart polyline.series').length === 3);
      assert.equal(await page.inputValue('#chart-column'), 'train_loss', 'the chosen column stays');
      assert.deepEqual(await page.locator('#chart .legend text').allTextContents(), ['exp0 batch=8 lr=0.1', 'exp1 batch=16 lr=0.01', 'exp2 batch=128']);
      await page.uncheck('#experiments input[value="exp2"]');
      await page.waitForFunction(() => document.querySelectorAll('#chart polyline.series').length === 2);
      await page.selectOption('#chart-column', 'val_loss');
      await page.waitForFunction(() => document.querySelector('#chart polyline.series')?.points.numberOfItems === 4);
      if (shots) {
        await page.evaluate(() => { document.getElementById('toast').hidden = true; }); // an earlier test's toast would cover the table
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: join(shots, `artifacts-page-chart-${kind}.png`) });
      }
    });

    for (const width of [900, 1400]) {
      test(`reads at ${width} px: no panel overflows, names break only after a slash, the chart's text is readable`, async () => {
        const { page } = view;
        await openSweep(page, ['exp0', 'exp1']);
        await page.setViewportSize({ width, height: 900 });
        const layout = await settled(page, () => ({
          // Panels and the page itself never scroll sideways. The experiments table would scroll inside its own
          // wrapper (.scroll) if a run had more columns than fit; this run's all fit, so no wrapper scrolls either.
          overflowing: [document.documentElement, ...document.querySelectorAll('main > section, main .scroll')]
            .filter((e) => e.scrollWidth > e.clientWidth).map((e) => `${e.id || e.className || e.tagName} ${e.scrollWidth} > ${e.clientWidth}`),
          headsCut: (() => {
            const pane = document.getElementById('experiments-pane').getBoundingClientRect();
            return [...document.querySelectorAll('#experiments-table th')].filter((th) => th.getBoundingClientRect().right > pane.right + 0.5).map((th) => th.textContent);
          })(),
          chartOutside: (() => {
            const pane = document.getElementById('chart-pane').getBoundingClientRect();
            const chart = document.getElementById('chart').getBoundingClientRect();
            return chart.width > 0 && chart.right <= pane.right + 0.5 ? null : [chart.width, chart.right, pane.right];
          })(),
          // Each text's font size as drawn: its CSS size times the scale the SVG's viewBox gives it.
          chartText: [...document.querySelectorAll('#chart text')].map((t) => {
            const m = t.getScreenCTM();
            return { text: t.textContent, px: Math.round(parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b) * 10) / 10 };
          }),
        }));
        assert.ok(layout.chartText.length > 10, 'the chart has its text');
        // An expression, not a function: the page's policy allows no code made from text in it.
        const names = await page.evaluate(`[...document.querySelectorAll('#artifacts td.name')]
          .map((td) => ({ path: td.closest('tr').dataset.path, lines: (${renderedLines})(td) }))`);
        assert.equal(names.length, 12);
        for (const { path, lines } of names) assert.equal(lines.join(''), path);
        // Everything that is wrong at once, not just the first thing.
        assert.deepEqual({
          overflowing: layout.overflowing,
          headsCut: layout.headsCut,
          chartOutside: layout.chartOutside,
          smallChartText: layout.chartText.filter((t) => t.px < 11),
          // A name breaks only after a slash (so hparams.yaml stays whole), and never one character a line.
          badBreaks: names.filter(({ lines }) => lines.slice(0, -1).some((l) => !l.endsWith('/')) || lines.some((l) => l.length < 2)),
        }, { overflowing: [], headsCut: [], chartOutside: null, smallChartText: [], badBreaks: [] });
        assert.ok(names.some((n) => n.lines.at(-1).endsWith('hparams.yaml')), 'hparams.yaml on one line');
        if (process.env.GRID_TEST_DOCS && kind === 'local') {
          // The pictures in docs/artifacts-page.md, from this fixture.
          await page.evaluate(() => { document.getElementById('toast').hidden = true; window.scrollTo(0, 0); });
          await page.screenshot(width === 900
            ? { path: join(process.env.GRID_TEST_DOCS, 'artifacts-page-900.png'), fullPage: true }
            : { path: join(process.env.GRID_TEST_DOCS, 'artifacts-page.png') });
        }
        await page.setViewportSize({ width: 1400, height: 900 });
      });
    }

    test('shows a hostile metrics.csv as text: its markup never becomes elements and never runs', async () => {
      const { page, alarms } = view;
      const markup = "<img src=x onerror=fetch('/pwned')>";
      await page.click('#finished-runs tr[data-run="hostile-run"]');
      await page.waitForSelector('#chart polyline.series');
      assert.deepEqual(await page.locator('#chart-column option').allTextContents(), [markup]);
      assert.equal(await page.inputValue('#chart-column'), markup);
      assert.equal(await page.locator('#chart polyline.series').evaluate((p) => p.points.numberOfItems), 3);
      const metricHeads = await page.locator('#experiments-table th[data-sort^="metric:"]').allTextContents();
      assert.ok(metricHeads.includes(markup), `the column name is a header's text: ${metricHeads}`);
      assert.equal(await page.locator('#chart img, #chart script, #experiments-table img, #experiments-table script').count(), 0);
      assert.doesNotMatch(await page.textContent('#experiments-table'), /script/);
      await page.waitForTimeout(500);
      assert.deepEqual(alarms.dialogs, [], 'no script showed a dialog');
      assert.deepEqual(alarms.pwned, [], 'no script made a request');
    });

    test('follows the address in an open page: a new hash, back and forward', async () => {
      const { page } = view;
      await page.evaluate(() => { window.samePage = true; });
      const shown = () => ({
        run: document.querySelector('tr.run.selected')?.dataset.run,
        ticked: [...document.querySelectorAll('#experiments input:checked')].map((i) => i.value),
        listed: [...new Set([...document.querySelectorAll('#artifacts a.download')].map((a) => {
          const q = new URL(a.href).searchParams;
          return `${q.get('run')}/${q.get('exp')}`;
        }))],
      });
      const go = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
      await go('#run=older-run&exp=exp0');
      await expectShown(page, shown, { run: 'older-run', ticked: ['exp0'], listed: ['older-run/exp0'] }, 'a new run in the hash');
      await go('#run=vision-sweep&exp=exp1');
      await expectShown(page, shown, { run: 'vision-sweep', ticked: ['exp1'], listed: ['vision-sweep/exp1'] }, 'another run and experiment');
      await go('#run=vision-sweep&exp=exp0,exp2');
      await expectShown(page, shown, { run: 'vision-sweep', ticked: ['exp0', 'exp2'], listed: ['vision-sweep/exp0', 'vision-sweep/exp2'] }, 'other experiments of the same run');
      await page.waitForFunction(() => document.querySelectorAll('#chart .legend text').length === 2);
      await page.evaluate(() => history.back());
      await expectShown(page, shown, { run: 'vision-sweep', ticked: ['exp1'], listed: ['vision-sweep/exp1'] }, 'back');
      await page.evaluate(() => history.back());
      await expectShown(page, shown, { run: 'older-run', ticked: ['exp0'], listed: ['older-run/exp0'] }, 'back again');
      await page.evaluate(() => history.forward());
      await expectShown(page, shown, { run: 'vision-sweep', ticked: ['exp1'], listed: ['vision-sweep/exp1'] }, 'forward');
      // A run opened by a click is a step in the history too: back returns to the one before.
      await page.click('#finished-runs tr[data-run="crashed-run"]');
      await expectShown(page, shown, { run: 'crashed-run', ticked: ['exp0'], listed: ['crashed-run/exp0'] }, 'a click');
      await page.evaluate(() => history.back());
      await expectShown(page, shown, { run: 'vision-sweep', ticked: ['exp1'], listed: ['vision-sweep/exp1'] }, 'back from a click');
      assert.equal(await page.evaluate(() => window.samePage), true, 'no reload');
    });

    test('follows an active run until it finishes, without a reload', async () => {
      const { page } = view;
      await page.evaluate(() => { window.samePage = true; });
      assert.equal(await page.locator('#active-runs tr[data-run="live-run"]').count(), 1);
      writeFileSync(fixture.stopFile, '');
      await page.waitForSelector('#finished-runs tr[data-run="live-run"] .status.Succeeded', { timeout: 60000 });
      assert.equal(await page.locator('#active-runs tr').count(), 0);
      assert.equal(await page.evaluate(() => window.samePage), true);
    });
  });
}

describe('the artifacts page with 1,000 runs and 20,000 artifacts in one experiment', () => {
  let fixture;
  let browser;
  let view;

  before(async () => {
    fixture = await startFixture('large');
    browser = await chromium.launch(launchOptions);
  });

  after(async () => {
    await browser?.close();
    await stopFixture(fixture);
  });

  test('lists the runs a page at a time', async () => {
    const started = Date.now();
    view = await openPage(browser, fixture);
    await view.page.waitForSelector('#finished-runs tr[data-run="big-run"]');
    const ms = Date.now() - started;
    const { page } = view;
    assert.equal(await page.locator('#finished-runs tr').count(), 500);
    await page.click('#more-runs');
    assert.equal(await page.locator('#finished-runs tr').count(), 1000);
    await page.click('#more-runs');
    assert.equal(await page.locator('#finished-runs tr').count(), 1001);
    assert.equal(await page.isHidden('#more-runs'), true);
    await page.fill('#run-filter', 'sweep-0999');
    await page.waitForFunction(() => document.querySelectorAll('#finished-runs tr').length === 1);
    console.log(`# 1,001 runs listed in ${ms} ms`);
  });

  test('lists, filters and downloads from 20,000 artifacts', async () => {
    const { page } = view;
    await page.fill('#run-filter', 'big-run');
    await page.click('#finished-runs tr[data-run="big-run"]');
    const started = Date.now();
    await page.waitForFunction(() => document.querySelector('#artifact-count').textContent === '20000 artifacts');
    const listed = Date.now() - started;
    assert.equal(await page.locator('#artifacts tr').count(), 500);
    const filterStarted = Date.now();
    await page.fill('#artifact-filter', 'f-12345');
    await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 1);
    const filtered = Date.now() - filterStarted;
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#artifacts a.download').click()]);
    assert.equal(readFileSync(await download.path(), 'utf8'), 'artifact 12345\n');
    await page.fill('#artifact-filter', 'shard-07/*');
    await page.waitForFunction(() => document.querySelector('#artifact-count').textContent === '200 of 20000 artifacts');
    console.log(`# 20,000 artifacts listed in ${listed} ms; filtered to one in ${filtered} ms`);
  });
});
