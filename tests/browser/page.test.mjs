// The artifacts page in a real browser (Debian's Chromium, headless, driven by playwright-core),
// against the module's own server on both stores. Each store is filled by Start-PageFixture.ps1.
//
//   GRID_TEST_MODULE_PATH   the staged module (out/GridArtifacts)
//   GRID_TEST_S3_ENDPOINT   the S3-compatible server build.ps1 started (the s3 suite needs it)
//   GRID_TEST_SCREENSHOTS   a folder for screenshots of the page (optional)
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
      assert.equal(await page.locator('#artifacts tr').count(), 10);
      assert.match(page.url(), /#run=vision-sweep&exp=exp0%2Cexp1$/);
    });

    test('filters artifacts by name', async () => {
      const { page } = view;
      await page.fill('#artifact-filter', '*.png');
      await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 2);
      assert.equal(await page.textContent('#artifact-count'), '2 of 10 artifacts');
      await page.fill('#artifact-filter', 'MODEL');
      await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 2);
      await page.fill('#artifact-filter', '');
      await page.waitForFunction(() => document.querySelectorAll('#artifacts tr').length === 10);
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
      await page.click('#preview-close');
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
      await page.check('#experiments input[value="exp0"]');
      await page.check('#experiments input[value="exp1"]');
      const lines = () => page.locator('#chart polyline.series').evaluateAll((ps) => ps.map((p) => ({ exp: p.dataset.exp, colour: p.classList[1], points: p.points.numberOfItems })));
      await page.waitForFunction(() => document.querySelectorAll('#chart polyline.series').length === 2);
      assert.equal(await page.inputValue('#chart-column'), 'val_loss');
      assert.deepEqual(await page.locator('#chart-column option').allTextContents(), ['epoch', 'train_loss', 'val_loss']);
      assert.deepEqual(await lines(), [{ exp: 'exp0', colour: 's0', points: 4 }, { exp: 'exp1', colour: 's1', points: 4 }]);
      assert.deepEqual(await page.locator('#chart .legend text').allTextContents(), ['exp0', 'exp1']);
      assert.deepEqual(await page.locator('#chart .legend title').allTextContents(), ['lightning_logs/version_0/metrics.csv', 'lightning_logs/version_0/metrics.csv']);
      assert.equal(await page.locator('#chart .tick.x').count(), 5);
      assert.equal(await page.locator('#chart .tick.y').count(), 5);
      assert.equal(await page.textContent('#chart .axis-label'), 'step');
      await page.selectOption('#chart-column', 'train_loss');
      await page.waitForFunction(() => document.querySelector('#chart polyline.series')?.points.numberOfItems === 8);
      assert.deepEqual((await lines()).map((l) => l.points), [8, 8]);
      await page.check('#experiments input[value="exp2"]');
      await page.waitForFunction(() => document.querySelectorAll('#chart polyline.series').length === 3);
      assert.equal(await page.inputValue('#chart-column'), 'train_loss', 'the chosen column stays');
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
