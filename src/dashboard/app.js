/*
 * app.js - the Temporis dashboard: sign in with a token, list and create data sources,
 * archive/unarchive them, and chart one series over a time range with dygraphs.
 *
 * Talks only to this origin's public /v1 API. The token lives in this page's memory,
 * or in this tab's sessionStorage when "keep me signed in" is ticked; never in
 * localStorage or cookies. Every error the server sends ({"detail": ...}) is shown.
 */
(function () {
  'use strict';

  const TOKEN_KEY = 'temporis.token';
  const PAGE_LIMIT = 10000;          /* the API's largest page */
  const MAX_POINTS = 200000;         /* stop fetching past this; the chart stays responsive */
  const DRAW_POINTS_MAX = 300;       /* draw dots on the line only when they can be told apart */
  const NAME_RULE = /^[a-z][a-z0-9_]{0,47}$/;

  const state = {
    token: null,
    sources: [],                     /* [{name, archived, created_at}] */
    selected: null,                  /* name of the selected source */
    series: [],                      /* of the selected source */
    chart: null,                     /* the Dygraph instance */
    points: [],                      /* [[timestamp, value]] last plotted */
    loadSeq: 0,                      /* bumps on every selection: late answers are dropped */
  };

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  /* ---- HTTP ---- */

  async function api(method, path, body, token) {
    const headers = { Authorization: 'Bearer ' + (token || state.token) };
    const opts = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'Cannot reach the server (' + e.message + ').');
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const detail = data && typeof data.detail === 'string' ? data.detail : 'HTTP ' + resp.status + '.';
      throw new ApiError(resp.status, detail);
    }
    return data;
  }

  function sourcePath(name, suffix) {
    return '/v1/data_sources/' + encodeURIComponent(name) + (suffix || '');
  }

  /* A 401 in the middle of a session: the token was revoked. Anything else is shown. */
  function handleError(err, where) {
    if (err instanceof ApiError && err.status === 401 && state.token) {
      signOut('Signed out: ' + err.message);
      return;
    }
    const text = err.message || String(err);
    if (where === 'banner') showBanner(text);
    else showError(where, text);
  }

  /* ---- messages ---- */

  function showError(id, text) {
    const el = $(id);
    el.textContent = text;
    el.hidden = !text;
  }

  function showBanner(text) {
    $('banner-text').textContent = text;
    $('banner').hidden = !text;
  }

  /* ---- formatting ---- */

  function fmtTime(ts) {
    return new Date(ts * 1000).toISOString().replace('T', ' ').replace('.000Z', ' UTC');
  }

  function toInput(ts) {
    return new Date(ts * 1000).toISOString().slice(0, 19);
  }

  function fromInput(value) {
    if (!value) return null;
    const ms = Date.parse(value + 'Z');
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  }

  function fmtValue(v) {
    return typeof v === 'number' ? String(v) : '';
  }

  /* ---- sign in / out ---- */

  async function signIn(token, remember) {
    showError('signin-error', '');
    $('signin-submit').disabled = true;
    try {
      const data = await api('GET', '/v1/data_sources', undefined, token);
      state.token = token;
      if (remember) sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      $('signin-view').hidden = true;
      $('app-view').hidden = false;
      $('session').hidden = false;
      setSources(data.data_sources || []);
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      showError('signin-error', err.message);
    } finally {
      $('signin-submit').disabled = false;
    }
  }

  function signOut(message) {
    state.token = null;
    state.sources = [];
    state.selected = null;
    state.loadSeq++;
    sessionStorage.removeItem(TOKEN_KEY);
    destroyChart();
    $('app-view').hidden = true;
    $('session').hidden = true;
    $('signin-view').hidden = false;
    $('detail-body').hidden = true;
    $('detail-empty').hidden = false;
    showBanner('');
    showError('signin-error', message || '');
    $('token').focus();
  }

  /* ---- data sources ---- */

  function setSources(list) {
    state.sources = list.slice().sort((a, b) => a.name.localeCompare(b.name));
    renderSources();
    if (state.selected && !state.sources.some((s) => s.name === state.selected)) {
      state.selected = null;
      renderDetail();
    }
  }

  function renderSources() {
    const ul = $('source-list');
    ul.replaceChildren();
    for (const src of state.sources) {
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'source-item' + (src.archived ? ' is-archived' : '');
      btn.dataset.name = src.name;
      if (src.name === state.selected) btn.setAttribute('aria-current', 'true');
      const name = document.createElement('span');
      name.className = 'source-name';
      name.textContent = src.name;
      btn.append(name);
      if (src.archived) {
        const badge = document.createElement('span');
        badge.className = 'badge badge-archived';
        badge.textContent = 'archived';
        btn.append(badge);
      }
      btn.addEventListener('click', () => selectSource(src.name));
      const li = document.createElement('li');
      li.append(btn);
      ul.append(li);
    }
    $('sources-empty').hidden = state.sources.length > 0;
  }

  async function refreshSources() {
    try {
      const data = await api('GET', '/v1/data_sources');
      setSources(data.data_sources || []);
      if (state.selected) renderDetail();
    } catch (err) {
      handleError(err, 'banner');
    }
  }

  function nameHint() {
    const value = $('new-name').value;
    const hint = $('name-hint');
    hint.classList.toggle('hint-ok', value !== '' && NAME_RULE.test(value));
    hint.classList.toggle('hint-bad', value !== '' && !NAME_RULE.test(value));
  }

  /* The server has the last word on names: its 422/409 detail is shown as sent. */
  async function createSource(event) {
    event.preventDefault();
    const name = $('new-name').value.trim();
    showError('create-error', '');
    $('create-submit').disabled = true;
    try {
      const src = await api('POST', '/v1/data_sources', { name });
      $('new-name').value = '';
      nameHint();
      setSources(state.sources.filter((s) => s.name !== src.name).concat([src]));
      selectSource(src.name);
    } catch (err) {
      handleError(err, 'create-error');
    } finally {
      $('create-submit').disabled = false;
    }
  }

  function currentSource() {
    return state.sources.find((s) => s.name === state.selected) || null;
  }

  async function toggleArchive() {
    const src = currentSource();
    if (!src) return;
    showError('detail-error', '');
    $('archive-toggle').disabled = true;
    try {
      const updated = await api('POST', sourcePath(src.name, src.archived ? '/unarchive' : '/archive'));
      setSources(state.sources.map((s) => (s.name === updated.name ? updated : s)));
      renderDetail();
    } catch (err) {
      handleError(err, 'detail-error');
    } finally {
      $('archive-toggle').disabled = false;
    }
  }

  /* ---- one source: header and series ---- */

  function renderDetail() {
    const src = currentSource();
    $('detail-empty').hidden = !!src;
    $('detail-body').hidden = !src;
    if (!src) return;
    $('detail-name').textContent = src.name;
    const status = $('detail-status');
    status.textContent = src.archived ? 'archived' : 'active';
    status.className = 'badge ' + (src.archived ? 'badge-archived' : 'badge-active');
    $('detail-created').textContent = fmtTime(src.created_at);
    const toggle = $('archive-toggle');
    toggle.textContent = src.archived ? 'Unarchive' : 'Archive';
    toggle.title = src.archived ? 'Accept ingest again' : 'Refuse new records (reads keep working)';
  }

  async function selectSource(name) {
    state.selected = name;
    showError('create-error', '');
    const seq = ++state.loadSeq;
    renderSources();
    renderDetail();
    showError('detail-error', '');
    destroyChart();
    setChartStatus('Loading series…');
    try {
      const data = await api('GET', sourcePath(name, '/series'));
      if (seq !== state.loadSeq) return;
      state.series = (data.series || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      renderSeries();
    } catch (err) {
      if (seq === state.loadSeq) {
        setChartStatus('');
        handleError(err, 'detail-error');
      }
    }
  }

  function renderSeries() {
    const select = $('series');
    select.replaceChildren();
    for (const s of state.series) {
      const opt = document.createElement('option');
      opt.value = s.name;
      opt.textContent = s.name;
      select.append(opt);
    }
    const none = state.series.length === 0;
    $('series-empty').hidden = !none;
    $('plot-form').hidden = none;
    setChartStatus('');
    if (none) return;
    applyRange();
    plot();
  }

  function selectedSeries() {
    return state.series.find((s) => s.name === $('series').value) || null;
  }

  /* Presets are relative to the series' own last record, so old data is one click away. */
  function applyRange() {
    const s = selectedSeries();
    const preset = $('range').value;
    if (!s || preset === 'custom') return;
    const end = s.last_timestamp + 1;
    const start = preset === 'all' ? s.first_timestamp : Math.max(s.first_timestamp, end - Number(preset));
    $('start').value = toInput(start);
    $('end').value = toInput(end);
  }

  /* ---- records and chart ---- */

  function setChartStatus(text) {
    $('chart-status').textContent = text;
  }

  async function fetchRecords(source, series, start, end, seq) {
    const points = [];
    let cursor = null;
    do {
      const q = new URLSearchParams({ name: series, start: String(start), end: String(end), limit: String(PAGE_LIMIT) });
      if (cursor) q.set('cursor', cursor);
      const page = await api('GET', sourcePath(source, '/records?' + q.toString()));
      if (seq !== state.loadSeq) return null;
      for (const r of page.records || []) points.push([r.timestamp, r.value]);
      cursor = page.next_cursor;
      setChartStatus('Loading… ' + points.length + ' points');
    } while (cursor && points.length < MAX_POINTS);
    return { points, truncated: !!cursor };
  }

  async function plot(event) {
    if (event) event.preventDefault();
    const series = $('series').value;
    const start = fromInput($('start').value);
    const end = fromInput($('end').value);
    showError('detail-error', '');
    if (!series) return;
    if (start === null || end === null || start >= end) {
      showError('detail-error', 'Choose a start before the end.');
      return;
    }
    const seq = ++state.loadSeq;
    $('plot').disabled = true;
    try {
      const result = await fetchRecords(state.selected, series, start, end, seq);
      if (result) draw(series, result.points, result.truncated);
    } catch (err) {
      if (seq === state.loadSeq) handleError(err, 'detail-error');
    } finally {
      $('plot').disabled = false;
    }
  }

  function destroyChart() {
    if (state.chart) state.chart.destroy();
    state.chart = null;
    state.points = [];
    $('chart').replaceChildren();
    $('legend').replaceChildren();
    $('stats').hidden = true;
    setChartStatus('');
  }

  function draw(series, points, truncated) {
    destroyChart();
    state.points = points;
    if (points.length === 0) {
      setChartStatus('No records of ' + series + ' in this range.');
      return;
    }
    if (typeof window.Dygraph !== 'function') {
      showError('detail-error', 'The chart library is missing: install the libjs-dygraphs package ' +
        '(temporisd serves it from web_lib_root, /usr/share/javascript).');
      return;
    }
    const rows = points.map(([ts, v]) => [new Date(ts * 1000), v]);
    state.chart = new window.Dygraph($('chart'), rows, {
      labels: ['Time', series],
      labelsUTC: true,
      labelsDiv: $('legend'),
      legend: 'always',
      colors: ['#2563eb'],
      strokeWidth: 1.6,
      drawPoints: points.length <= DRAW_POINTS_MAX,
      pointSize: 2.5,
      gridLineColor: '#e5e7eb',
      axisLineColor: '#9ca3af',
      axes: { y: { valueFormatter: fmtValue, axisLabelWidth: 64 } },
    });
    renderStats(points);
    setChartStatus(points.length + ' points' + (truncated ? ' (the first ' + MAX_POINTS + ' only: narrow the range)' : '') +
      ' · drag to zoom, double-click to reset');
  }

  function renderStats(points) {
    let min = Infinity;
    let max = -Infinity;
    for (const [, v] of points) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    $('stat-count').textContent = String(points.length);
    $('stat-min').textContent = fmtValue(min);
    $('stat-max').textContent = fmtValue(max);
    $('stat-last').textContent = fmtValue(points[points.length - 1][1]);
    $('stats').hidden = false;
  }

  /* ---- wiring ---- */

  function init() {
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const token = $('token').value.trim();
      if (token) signIn(token, $('remember').checked);
    });
    $('sign-out').addEventListener('click', () => signOut(''));
    $('banner-close').addEventListener('click', () => showBanner(''));
    $('refresh-sources').addEventListener('click', refreshSources);
    $('create-form').addEventListener('submit', createSource);
    $('new-name').addEventListener('input', () => { nameHint(); showError('create-error', ''); });
    $('archive-toggle').addEventListener('click', toggleArchive);
    $('plot-form').addEventListener('submit', plot);
    $('series').addEventListener('change', () => { applyRange(); plot(); });
    $('range').addEventListener('change', () => { applyRange(); if ($('range').value !== 'custom') plot(); });
    for (const id of ['start', 'end']) $(id).addEventListener('input', () => { $('range').value = 'custom'; });
    if (typeof window.Dygraph !== 'function') {
      showBanner('The chart library did not load: install libjs-dygraphs (served at /javascript/dygraphs/).');
    }
    /* Read-only handles for the browser test and for curious operators. */
    window.temporisDashboard = { chart: () => state.chart, points: () => state.points.slice() };
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved, true);
    else $('token').focus();
  }

  init();
}());
