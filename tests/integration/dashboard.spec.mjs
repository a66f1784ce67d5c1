// dashboard.spec.mjs - drives the web dashboard of a running temporisd in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core): sign in, create a data source in the
// UI, ingest through the API, chart a series and check the plotted points against what was
// sent, archive in the UI and see ingest refused; then several dense series in one chart,
// read downsampled (at most two points per pixel), the series filter and auto-refresh. Run by test_dashboard.sh, which starts the
// server and passes: TEMPORIS_URL, TEMPORIS_TOKEN, PLAYWRIGHT_PREFIX (npm --prefix holding
// playwright-core), SHOTS_DIR (screenshots). Prints "PASS name" / "FAIL name: why" lines.

import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.TEMPORIS_URL;
const TOKEN = process.env.TEMPORIS_TOKEN;
const PREFIX = process.env.PLAYWRIGHT_PREFIX;
const SHOTS = process.env.SHOTS_DIR;
if (!BASE || !TOKEN || !PREFIX || !SHOTS) {
  console.log('FAIL setup: TEMPORIS_URL, TEMPORIS_TOKEN, PLAYWRIGHT_PREFIX and SHOTS_DIR are required');
  process.exit(1);
}
const { chromium } = createRequire(join(PREFIX, 'package.json'))('playwright-core');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STEP_TIMEOUT_MS = 10000;
const POLL_MS = 50;

const SOURCE = 'grid_load_eu';
const T0 = 1718841600;                 /* 2024-06-20 00:00:00 UTC */
const STEP_S = 60;
const LOAD = Array.from({ length: 60 }, (_, i) =>
  ({ timestamp: T0 + i * STEP_S, name: 'load_mw', value: Math.round((50 + 20 * Math.sin(i / 6) + 0.3 * i) * 100) / 100 }));
const TEMP = [-3, 0, 7, 12, 4].map((v, i) => ({ timestamp: T0 + i * 3600, name: 'temp_c', value: v }));
const DENSE_N = 12000;                 /* more than two per pixel of the chart: read downsampled */
const DENSE = Array.from({ length: DENSE_N }, (_, i) => ({ timestamp: T0 + i, name: 'dense', value: i % 100 }));
/* A second source: three series of 20,000 points a second each, two plotted together. */
const PLANT = 'plant_sensors';
const T1 = T0 + 10 * 86400;
const PLANT_N = 20000;
const PLANT_SERIES = {
  flow_rate: (i) => Math.round((40 + 15 * Math.sin(i / 900) + 3 * Math.sin(i / 37)) * 1000) / 1000,
  pressure_kpa: (i) => Math.round((101 + 8 * Math.cos(i / 1500) + (i % 50) / 25) * 100) / 100,
  pump_rpm: (i) => 1400 + Math.round(200 * Math.sin(i / 2500)) + (i % 7),
};
const POINTS_PER_PIXEL = 2;
const INVALID_NAME = 'Invalid name: use 1-48 characters, start with a lowercase letter, then lowercase letters, ' +
  'digits or underscores.';

let page;
let shotSeq = 0;
const consoleErrors = [];
const externalRequests = [];

/* ---- harness ---- */

class StepError extends Error {}

function check(cond, message) {
  if (!cond) throw new StepError(message);
}

/* Retry fn until it stops throwing: the page updates asynchronously. */
async function eventually(fn, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

async function screenshot(label) {
  const file = join(SHOTS, String(++shotSeq).padStart(2, '0') + '-' + label.replace(/[^a-z0-9]+/gi, '-').slice(0, 60) + '.png');
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

async function step(name, fn) {
  try {
    await fn();
    console.log('PASS ' + name);
  } catch (err) {
    let where = '';
    try {
      where = ' [screenshot: ' + await screenshot('failure-' + name) + ']';
    } catch (e) {
      where = ' [no screenshot: ' + e.message + ']';
    }
    console.log('FAIL ' + name + ': ' + String(err.message || err).split('\n')[0] + where);
    throw new StepError(name);
  }
}

const text = (sel) => page.locator(sel).innerText();
const visible = (sel) => page.locator(sel).isVisible();

async function expectText(sel, want) {
  await eventually(async () => {
    const got = (await text(sel)).trim();
    check(got === want, `${sel}: expected "${want}", got "${got}"`);
  });
}

async function ingest(records, source = SOURCE) {
  const resp = await fetch(BASE + '/v1/data_sources/ingest', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ data_source: source, records }),
  });
  const body = await resp.text();
  return { status: resp.status, body };
}

/* datetime-local's own form: the browser drops ":00" seconds from the value. */
function toInput(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 19).replace(/:00$/, '');
}

/* The plotted rows as [x_ms, y1, y2, ...], read from the Dygraph instance itself. */
function plottedRows() {
  return page.evaluate(() => {
    const g = window.temporisDashboard.chart();
    if (!g) return null;
    const rows = [];
    for (let i = 0; i < g.numRows(); i++) {
      const row = [];
      for (let c = 0; c < g.numColumns(); c++) row.push(g.getValue(i, c));
      rows.push(row);
    }
    return rows;
  });
}

/* Tick exactly the named series in the list (as a user would, one click each). */
async function choose(names) {
  await page.fill('#series-search', '');
  await eventually(async () => check(await page.locator('#series-list li').count() > 0, 'no series listed'));
  for (const li of await page.locator('#series-list li').all()) {
    const name = await li.getAttribute('data-name');
    const want = names.includes(name);
    const box = li.locator('input[type="checkbox"]');
    if (await box.isChecked() !== want) await box.setChecked(want);
  }
}

const listedSeries = () => page.locator('#series-list li').evaluateAll(
  (lis) => lis.map((li) => li.dataset.name));
const visibleSeries = () => page.locator('#series-list li').evaluateAll(
  (lis) => lis.filter((li) => !li.hidden).map((li) => li.dataset.name));
const statOf = (series, cls) => `#stats tr[data-name="${series}"] .${cls}`;

/* The buckets the API answers for points [[ts, v]] over [start, end): [[bucket, value]]. */
function modelBuckets(points, start, end, step, agg) {
  const groups = new Map();
  for (const [ts, v] of points) {
    if (ts < start || ts >= end) continue;
    const b = Math.floor(ts / step) * step;
    if (!groups.has(b)) groups.set(b, []);
    groups.get(b).push(v);
  }
  return [...groups.keys()].sort((a, b) => a - b).map((b) => {
    const vs = groups.get(b);
    if (agg === 'avg') return [b, vs.reduce((a, v) => a + v, 0) / vs.length];
    return [b, agg === 'min' ? Math.min(...vs) : Math.max(...vs)];
  });
}

const close = (a, b) => a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

/* Column col of the chart holds exactly want ([[ts, v]]), at the rows of those timestamps. */
function checkColumn(rows, col, want, label) {
  const got = rows.filter((r) => r[col] !== null).map((r) => [r[0] / 1000, r[col]]);
  check(got.length === want.length, `${label}: ${got.length} points drawn, expected ${want.length}`);
  want.forEach(([ts, v], i) => {
    check(got[i][0] === ts && close(got[i][1], v), `${label} point ${i}: drawn [${got[i]}], expected [${ts},${v}]`);
  });
}

async function expectPlotted(records) {
  await eventually(async () => {
    const status = await text('#chart-status');
    check(status.startsWith(records.length + ' points'), `chart status "${status}", expected ${records.length} points`);
  });
  const canvases = await page.locator('#chart canvas').count();
  check(canvases > 0, 'no dygraphs canvas in #chart');
  const rows = await plottedRows();
  check(rows && rows.length === records.length, `chart has ${rows && rows.length} rows, expected ${records.length}`);
  records.forEach((r, i) => {
    check(rows[i][0] === r.timestamp * 1000 && rows[i][1] === r.value,
      `row ${i}: plotted [${rows[i]}], sent [${r.timestamp * 1000},${r.value}]`);
  });
}

async function signIn(token, remember) {
  await page.fill('#token', token);
  if (remember) await page.check('#remember');
  await page.click('#signin-submit');
}

/* ---- steps ---- */

async function run() {
  await step('the page loads from this server only, with the dygraphs library', async () => {
    const resp = await page.goto(BASE + '/');
    check(resp.status() === 200, 'GET / answered ' + resp.status());
    check(await page.title() === 'Temporis', 'title is ' + await page.title());
    check(await visible('#signin-view'), 'sign-in form not visible');
    check(await page.evaluate(() => typeof window.Dygraph === 'function'), 'window.Dygraph is not loaded');
  });

  await step('a wrong token shows the server detail', async () => {
    await signIn('ts_not_a_real_token', false);
    await expectText('#signin-error', 'Invalid access token.');
    check(await visible('#signin-view'), 'left the sign-in view with a bad token');
    console.log('screenshot: ' + await screenshot('signin-error'));
  });

  await step('signing in lists only the account\'s data sources', async () => {
    await signIn(TOKEN, false);
    await eventually(async () => check(await visible('#app-view'), 'app view not shown'));
    await eventually(async () => check(await page.locator('.source-item[data-name="existing_src"]').count() === 1,
      'existing_src is not listed'));
    check(await page.locator('.source-item[data-name="other_secret"]').count() === 0, 'another account\'s source is listed');
  });

  await step('an invalid name shows the rules and the server\'s 422 detail', async () => {
    await page.fill('#new-name', '2024data');
    check(await page.locator('#name-hint.hint-bad').count() === 1, 'the rules hint is not flagged');
    await page.click('#create-submit');
    await expectText('#create-error', INVALID_NAME);
    check(await page.locator('.source-item[data-name="2024data"]').count() === 0, 'invalid source listed');
  });

  await step('creating a data source in the UI selects it', async () => {
    await page.fill('#new-name', SOURCE);
    check(await page.locator('#name-hint.hint-ok').count() === 1, 'a valid name is not marked ok');
    await page.click('#create-submit');
    await eventually(async () => check(
      await page.locator(`.source-item[data-name="${SOURCE}"][aria-current="true"]`).count() === 1, 'new source not selected'));
    await expectText('#detail-name', SOURCE);
    await expectText('#detail-status', 'active');
    check(await visible('#create-error') === false, 'an error is still shown');
    await eventually(async () => check(await visible('#series-empty'), 'empty-series hint not shown'));
  });

  await step('creating it again shows the server\'s 409 detail', async () => {
    await page.fill('#new-name', SOURCE);
    await page.click('#create-submit');
    await expectText('#create-error', 'Data source already exists.');
  });

  await step('records ingested through the API are accepted (204)', async () => {
    for (const batch of [LOAD, TEMP, DENSE]) {
      const r = await ingest(batch);
      check(r.status === 204, `ingest of ${batch[0].name}: ${r.status} ${r.body}`);
    }
  });

  await step('the chart plots exactly the points sent, with legend and stats', async () => {
    await page.click(`.source-item[data-name="${SOURCE}"]`);
    await eventually(async () => {
      const names = await listedSeries();
      check(names.join(',') === 'dense,load_mw,temp_c', 'series listed: ' + names.join(','));
    });
    await choose(['load_mw']);
    await expectPlotted(LOAD);
    const k = 17;
    await page.evaluate((row) => window.temporisDashboard.chart().setSelection(row), k);
    await eventually(async () => {
      const legend = await text('#legend');
      check(legend.includes('load_mw') && legend.includes(String(LOAD[k].value)),
        `legend "${legend}" lacks load_mw: ${LOAD[k].value}`);
    });
    const values = LOAD.map((r) => r.value);
    await expectText(statOf('load_mw', 'stat-count'), String(LOAD.length));
    await expectText(statOf('load_mw', 'stat-min'), String(Math.min(...values)));
    await expectText(statOf('load_mw', 'stat-max'), String(Math.max(...values)));
    await expectText(statOf('load_mw', 'stat-last'), String(values[values.length - 1]));
  });

  await step('a custom range plots only what lies in [start, end)', async () => {
    await page.fill('#start', toInput(T0 + 10 * STEP_S));
    await page.fill('#end', toInput(T0 + 20 * STEP_S));
    check(await page.inputValue('#range') === 'custom', 'editing the range did not switch to custom');
    await page.click('#plot');
    await expectPlotted(LOAD.slice(10, 20));
  });

  await step('another series plots too (temp_c, integers)', async () => {
    await page.selectOption('#range', 'all');
    await choose(['temp_c']);
    await expectPlotted(TEMP);
  });

  await step('a dense series is read downsampled: avg buckets, at most 2 points per pixel', async () => {
    await choose(['dense']);
    const f = await eventually(async () => {
      const got = await page.evaluate(() => window.temporisDashboard.fetched());
      check(got && got.series.length === 1 && got.series[0].name === 'dense', 'fetched: ' + JSON.stringify(got));
      return got;
    });
    const s0 = f.series[0];
    check(s0.step > 1 && s0.agg === 'avg', 'not downsampled: ' + JSON.stringify(f));
    check(s0.points <= POINTS_PER_PIXEL * f.width, `${s0.points} points for a chart ${f.width} px wide`);
    const rows = await plottedRows();
    checkColumn(rows, 1, modelBuckets(DENSE.map((r) => [r.timestamp, r.value]), f.start, f.end, s0.step, 'avg'), 'dense');
  });

  await step('archiving in the UI marks the source archived and ingest gets 409', async () => {
    await choose(['load_mw']);
    await expectPlotted(LOAD);
    await expectText('#archive-toggle', 'Archive');
    await page.click('#archive-toggle');
    await expectText(`.source-item[data-name="${SOURCE}"] .badge-archived`, 'archived');
    await expectText('#detail-status', 'archived');
    await expectText('#archive-toggle', 'Unarchive');
    const r = await ingest(LOAD.slice(0, 1));
    check(r.status === 409, `ingest into an archived source: ${r.status} ${r.body}`);
    check(JSON.parse(r.body).detail === 'Data source is archived.', 'detail: ' + r.body);
    console.log('screenshot: ' + await screenshot('archived'));
  });

  await step('an archived source stays readable in the UI', async () => {
    await page.click(`.source-item[data-name="${SOURCE}"]`);
    await eventually(async () => check((await listedSeries()).length === 3, 'series not reloaded'));
    check(await page.locator('#series-list li[data-name="load_mw"] input').isChecked(), 'load_mw no longer chosen');
    await expectPlotted(LOAD);
  });

  await step('unarchiving in the UI accepts ingest again', async () => {
    await page.click('#archive-toggle');
    await expectText('#detail-status', 'active');
    check(await page.locator(`.source-item[data-name="${SOURCE}"] .badge-archived`).count() === 0, 'still marked archived');
    const r = await ingest(LOAD.slice(0, 1));
    check(r.status === 204, `ingest after unarchive: ${r.status} ${r.body}`);
  });

  await step('the token lives in page memory only (no localStorage, no cookie)', async () => {
    const kept = await page.evaluate(() => ({ ls: localStorage.length, ss: sessionStorage.length, cookie: document.cookie }));
    check(kept.ls === 0 && kept.ss === 0 && kept.cookie === '', 'stored: ' + JSON.stringify(kept));
    await page.reload();
    await eventually(async () => check(await visible('#signin-view'), 'still signed in after a reload'));
  });

  await step('"keep me signed in" uses this tab\'s sessionStorage; sign out clears it', async () => {
    await signIn(TOKEN, true);
    await eventually(async () => check(await visible('#app-view'), 'app view not shown'));
    await page.reload();
    await eventually(async () => check(await visible('#app-view'), 'not signed in again after reload'));
    const kept = await page.evaluate(() => ({ ls: localStorage.length, ss: sessionStorage.length, cookie: document.cookie }));
    check(kept.ls === 0 && kept.ss === 1 && kept.cookie === '', 'stored: ' + JSON.stringify(kept));
    await page.click('#sign-out');
    await eventually(async () => check(await visible('#signin-view'), 'sign-in view not shown'));
    check(await page.evaluate(() => sessionStorage.length) === 0, 'sessionStorage not cleared');
  });

  await step('a second source of 3 series x 20,000 points is accepted (204)', async () => {
    const r = await fetch(BASE + '/v1/data_sources', {
      method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN }, body: JSON.stringify({ name: PLANT }) });
    check(r.status === 201, 'create ' + PLANT + ': ' + r.status);
    for (const [name, fn] of Object.entries(PLANT_SERIES)) {
      const got = await ingest(Array.from({ length: PLANT_N }, (_, i) => ({ timestamp: T1 + i, name, value: fn(i) })), PLANT);
      check(got.status === 204, `ingest of ${name}: ${got.status} ${got.body}`);
    }
  });

  const plantPoints = (name) => Array.from({ length: PLANT_N }, (_, i) => [T1 + i, PLANT_SERIES[name](i)]);

  /* Two series in one chart: each fetched downsampled, both drawn with the API's buckets. */
  async function expectTwoDownsampled(agg) {
    const f = await eventually(async () => {
      const got = await page.evaluate(() => window.temporisDashboard.fetched());
      check(got && got.series.map((x) => x.name + ':' + x.agg).join(',') === `flow_rate:${agg},pressure_kpa:${agg}`,
        'fetched: ' + JSON.stringify(got));
      return got;
    });
    for (const s of f.series) {
      check(s.step > 1, `${s.name} not downsampled: ${JSON.stringify(s)}`);
      check(s.points <= POINTS_PER_PIXEL * f.width && s.points > f.width / 2,
        `${s.name}: ${s.points} points for a chart ${f.width} px wide`);
    }
    const labels = await page.evaluate(() => window.temporisDashboard.chart().getLabels());
    check(labels.join(',') === 'Time,flow_rate,pressure_kpa', 'chart labels: ' + labels.join(','));
    const rows = await plottedRows();
    f.series.forEach((s, i) => checkColumn(rows, i + 1,
      modelBuckets(plantPoints(s.name), f.start, f.end, s.step, agg), s.name));
    return f;
  }

  await step('two series in one chart, each read downsampled to at most 2 points per pixel', async () => {
    await signIn(TOKEN, false);
    await eventually(async () => check(await visible('#app-view'), 'app view not shown'));
    await eventually(async () => check(await page.locator(`.source-item[data-name="${PLANT}"]`).count() === 1, PLANT + ' not listed'));
    await page.click(`.source-item[data-name="${PLANT}"]`);
    await eventually(async () => check((await listedSeries()).join(',') === 'flow_rate,pressure_kpa,pump_rpm',
      'series listed: ' + (await listedSeries()).join(',')));
    await page.selectOption('#range', 'all');
    await choose(['flow_rate', 'pressure_kpa']);
    const f = await expectTwoDownsampled('avg');
    await eventually(async () => {
      const status = await text('#chart-status');
      const total = f.series.reduce((n, s) => n + s.points, 0);
      check(status.startsWith(total + ' points in 2 series'), 'chart status: ' + status);
    });
    await page.evaluate(() => { const g = window.temporisDashboard.chart(); g.setSelection(Math.floor(g.numRows() / 2)); });
    await eventually(async () => {
      const legend = await text('#legend');
      check(legend.includes('flow_rate') && legend.includes('pressure_kpa'), 'legend: ' + legend);
    });
    await expectText(statOf('pressure_kpa', 'stat-count'), String(f.series[1].points));
    console.log('INFO chart ' + f.width + ' px wide: ' + f.series.map((s) => `${s.name} ${s.points} points (${s.agg} of ${s.step} s)`).join(', '));
    console.log('screenshot: ' + await screenshot('downsampled-multi-series'));
  });

  await step('"Maximum per bucket" re-reads both series with agg=max', async () => {
    await page.selectOption('#agg', 'max');
    await expectTwoDownsampled('max');
    await page.selectOption('#agg', 'avg');
    await expectTwoDownsampled('avg');
  });

  await step('the search box filters the series list; the chart keeps its series', async () => {
    await page.fill('#series-search', 'PRESS');
    await eventually(async () => check((await visibleSeries()).join(',') === 'pressure_kpa', 'shown: ' + (await visibleSeries()).join(',')));
    await page.fill('#series-search', 'rat');
    await eventually(async () => check((await visibleSeries()).join(',') === 'flow_rate', 'shown: ' + (await visibleSeries()).join(',')));
    await page.fill('#series-search', 'no_such');
    await eventually(async () => check((await visibleSeries()).length === 0 && await visible('#series-nomatch'),
      'shown: ' + (await visibleSeries()).join(',')));
    const labels = await page.evaluate(() => window.temporisDashboard.chart().getLabels());
    check(labels.length === 3, 'the filter changed the chart: ' + labels.join(','));
    await page.fill('#series-search', '');
    await eventually(async () => check((await visibleSeries()).length === 3 && !await visible('#series-nomatch'), 'filter not cleared'));
  });

  await step('auto-refresh every 5 s re-reads the chart: a new point appears', async () => {
    const before = await page.evaluate(() => window.temporisDashboard.refreshes());
    await page.selectOption('#auto-refresh', '5');
    const ts = T1 + 2 * PLANT_N;          /* far past the rest: alone in its bucket */
    const got = await ingest([{ timestamp: ts, name: 'flow_rate', value: 999.5 }], PLANT);
    check(got.status === 204, 'ingest: ' + got.status + ' ' + got.body);
    await eventually(async () => {
      const rows = await plottedRows();
      const last = rows && rows[rows.length - 1];
      const f = await page.evaluate(() => window.temporisDashboard.fetched());
      check(last && last[1] === 999.5 && f && f.end === ts + 1 && last[0] / 1000 === Math.floor(ts / f.series[0].step) * f.series[0].step,
        'last row ' + JSON.stringify(last) + ' of ' + JSON.stringify(f));
      check(f.series.every((s) => s.points <= POINTS_PER_PIXEL * f.width), 'too many points: ' + JSON.stringify(f));
    }, 15000);
    const after = await page.evaluate(() => window.temporisDashboard.refreshes());
    check(after > before, `refresh rounds ${before} -> ${after}`);
    await page.selectOption('#auto-refresh', '0');
  });

  await step('final view: the chart of load_mw over the whole series', async () => {
    await page.click(`.source-item[data-name="${SOURCE}"]`);
    await eventually(async () => check((await listedSeries()).length === 3, 'series not loaded'));
    await choose(['load_mw']);
    await expectPlotted(LOAD);
    await page.evaluate(() => window.temporisDashboard.chart().setSelection(40));
    console.log('screenshot: ' + await screenshot('dashboard-final'));
  });

  await step('no console errors, CSP violations or requests to other origins', async () => {
    check(externalRequests.length === 0, 'requests to other origins: ' + externalRequests.join(' '));
    check(consoleErrors.length === 0, 'console: ' + consoleErrors.join(' | '));
  });
}

/* Expected failures answered by the API (401 bad token, 422, 409) log "Failed to load resource". */
function onConsole(msg) {
  if (msg.type() !== 'error') return;
  if (/Failed to load resource: the server responded with a status of (401|409|422)/.test(msg.text())) return;
  consoleErrors.push(msg.text());
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(SHOTS, 'profile-'));
  let context;
  let rc = 0;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 860 },
    });
    const origin = new URL(BASE).origin;
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('data:') || new URL(url).origin === origin) return route.continue();
      externalRequests.push(url);
      return route.abort();
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('console', onConsole);
    page.on('pageerror', (err) => consoleErrors.push('page error: ' + err.message));
    await run();
  } catch (err) {
    /* A failed step has printed its own line; anything else failed outside the steps. */
    if (!(err instanceof StepError)) console.log('FAIL browser: ' + String(err.message || err).split('\n')[0]);
    rc = 1;
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  process.exit(rc);
}

main();
