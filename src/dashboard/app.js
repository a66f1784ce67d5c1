/*
 * app.js - the Temporis dashboard: sign in with a token, list and create data sources,
 * archive/unarchive them, and chart several series of a source over a time range with
 * dygraphs. A dense range is read downsampled (records?step=&agg=) so that a chart never
 * fetches more than about two points per pixel of its width.
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
  const POINTS_PER_PIXEL = 2;        /* what a chart of W pixels fetches at most, per series */
  const CHART_WIDTH_MIN = 200;       /* a hidden chart has no width yet: assume this much */
  const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
  const NAME_RULE = /^[a-z][a-z0-9_]{0,47}$/;

  const state = {
    token: null,
    sources: [],                     /* [{name, archived, created_at}] */
    selected: null,                  /* name of the selected source */
    series: [],                      /* of the selected source */
    chosen: [],                      /* names of the series to plot, in the list's order */
    chart: null,                     /* the Dygraph instance */
    points: [],                      /* [[timestamp, value]] of the first series last plotted */
    fetched: null,                   /* what the last plot asked for and got (for the test) */
    loadSeq: 0,                      /* bumps on every selection: late answers are dropped */
    refreshTimer: null,
    refreshes: 0,                    /* auto-refresh rounds that re-read the records */
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
    if (name !== state.selected) state.chosen = [];
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
      setSeries(data.series || []);
      renderSeries();
    } catch (err) {
      if (seq === state.loadSeq) {
        setChartStatus('');
        handleError(err, 'detail-error');
      }
    }
  }

  /* The source's series; the chosen ones that still exist stay chosen, else the first. */
  function setSeries(list) {
    state.series = list.slice().sort((a, b) => a.name.localeCompare(b.name));
    const names = new Set(state.series.map((s) => s.name));
    state.chosen = state.chosen.filter((n) => names.has(n));
    if (state.chosen.length === 0 && state.series.length > 0) state.chosen = [state.series[0].name];
  }

  function colorOf(name) {
    const i = state.chosen.indexOf(name);
    return i < 0 ? '' : COLORS[i % COLORS.length];
  }

  function renderSeries() {
    const ul = $('series-list');
    ul.replaceChildren();
    for (const s of state.series) {
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = s.name;
      box.checked = state.chosen.includes(s.name);
      box.addEventListener('change', () => toggleSeries(s.name, box.checked));
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      const name = document.createElement('span');
      name.textContent = s.name;
      const label = document.createElement('label');
      label.className = 'series-item';
      label.append(box, swatch, name);
      const li = document.createElement('li');
      li.dataset.name = s.name;
      li.append(label);
      ul.append(li);
    }
    const none = state.series.length === 0;
    $('series-empty').hidden = !none;
    $('plot-form').hidden = none;
    setChartStatus('');
    paintSwatches();
    filterSeries();
    if (none) return;
    applyRange();
    plot();
  }

  /* The checked series keep their colour in the list, as in the chart. */
  function paintSwatches() {
    for (const li of $('series-list').children) {
      const c = colorOf(li.dataset.name);
      const sw = li.querySelector('.swatch');
      sw.style.background = c || 'transparent';
      sw.style.borderColor = c || '#d1d5db';
    }
    $('series-count').textContent = '(' + state.chosen.length + ' of ' + state.series.length + ' plotted)';
  }

  /* The search box hides the series whose name lacks its text (a chosen one stays plotted). */
  function filterSeries() {
    const needle = $('series-search').value.trim().toLowerCase();
    let shown = 0;
    for (const li of $('series-list').children) {
      const match = li.dataset.name.toLowerCase().includes(needle);
      li.hidden = !match;
      if (match) shown++;
    }
    $('series-nomatch').hidden = shown > 0 || state.series.length === 0;
  }

  function toggleSeries(name, on) {
    const set = new Set(state.chosen);
    if (on) set.add(name);
    else set.delete(name);
    state.chosen = state.series.map((s) => s.name).filter((n) => set.has(n));
    paintSwatches();
    applyRange();
    plot();
  }

  function chosenSeries() {
    return state.series.filter((s) => state.chosen.includes(s.name));
  }

  /* Presets are relative to the chosen series' own last record, so old data is one click away. */
  function applyRange() {
    const chosen = chosenSeries();
    const preset = $('range').value;
    if (chosen.length === 0 || preset === 'custom') return;
    const first = Math.min(...chosen.map((s) => s.first_timestamp));
    const end = Math.max(...chosen.map((s) => s.last_timestamp)) + 1;
    const start = preset === 'all' ? first : Math.max(first, end - Number(preset));
    $('start').value = toInput(start);
    $('end').value = toInput(end);
  }

  /* ---- records and chart ---- */

  function setChartStatus(text) {
    $('chart-status').textContent = text;
  }

  /* Every page of one query (limit PAGE_LIMIT), or null when a newer plot began. */
  async function fetchPages(source, params, seq, onPage) {
    const points = [];
    let cursor = null;
    do {
      const q = new URLSearchParams(params);
      q.set('limit', String(PAGE_LIMIT));
      if (cursor) q.set('cursor', cursor);
      const page = await api('GET', sourcePath(source, '/records?' + q.toString()));
      if (seq !== state.loadSeq) return null;
      for (const r of page.records || []) points.push([r.timestamp, r.value]);
      cursor = page.next_cursor;
      onPage(points.length);
    } while (cursor && points.length < MAX_POINTS);
    return { points, truncated: !!cursor };
  }

  /*
   * One series over [start, end) with at most maxPoints points: raw when the range holds
   * no more (a range of at most maxPoints seconds cannot; otherwise one page of maxPoints
   * records tells), else buckets of step seconds, so that the aligned buckets of the
   * range number at most maxPoints.
   */
  async function fetchSeries(source, series, start, end, maxPoints, agg, seq, onPage) {
    const range = { name: series, start: String(start), end: String(end) };
    if (end - start > maxPoints) {
      const q = new URLSearchParams(range);
      q.set('limit', String(maxPoints));
      const probe = await api('GET', sourcePath(source, '/records?' + q.toString()));
      if (seq !== state.loadSeq) return null;
      if (probe.next_cursor !== null) {
        const step = Math.max(1, Math.ceil((end - start) / (maxPoints - 1)));
        const got = await fetchPages(source, { ...range, step: String(step), agg }, seq, onPage);
        return got && { ...got, name: series, step, agg };
      }
      onPage(probe.records.length);
      return { points: probe.records.map((r) => [r.timestamp, r.value]), truncated: false, name: series, step: 0, agg: null };
    }
    const got = await fetchPages(source, range, seq, onPage);
    return got && { ...got, name: series, step: 0, agg: null };
  }

  function chartWidth() {
    return Math.max(CHART_WIDTH_MIN, Math.floor($('chart').clientWidth || $('detail').clientWidth));
  }

  /* quiet: an auto-refresh round, which keeps the chart on screen while it reads. */
  async function plot(event, quiet) {
    if (event) event.preventDefault();
    const chosen = state.chosen.slice();
    const start = fromInput($('start').value);
    const end = fromInput($('end').value);
    showError('detail-error', '');
    if (chosen.length === 0) {
      destroyChart();
      setChartStatus('Choose at least one series.');
      return;
    }
    if (start === null || end === null || start >= end) {
      showError('detail-error', 'Choose a start before the end.');
      return;
    }
    const seq = ++state.loadSeq;
    const width = chartWidth();
    const maxPoints = POINTS_PER_PIXEL * width;
    const agg = $('agg').value;
    const loaded = new Array(chosen.length).fill(0);
    const onPage = (i) => (n) => {
      loaded[i] = n;
      if (!quiet) setChartStatus('Loading… ' + loaded.reduce((a, b) => a + b, 0) + ' points');
    };
    $('plot').disabled = true;
    try {
      const results = await Promise.all(chosen.map((name, i) =>
        fetchSeries(state.selected, name, start, end, maxPoints, agg, seq, onPage(i))));
      if (seq !== state.loadSeq || results.some((r) => r === null)) return;
      state.fetched = { width, maxPoints, start, end, series: results.map((r) => ({
        name: r.name, step: r.step, agg: r.agg, points: r.points.length, truncated: r.truncated })) };
      draw(results);
    } catch (err) {
      if (seq === state.loadSeq) handleError(err, 'detail-error');
    } finally {
      if (seq === state.loadSeq) $('plot').disabled = false;
    }
  }

  function destroyChart() {
    if (state.chart) state.chart.destroy();
    state.chart = null;
    state.points = [];
    state.fetched = null;
    $('chart').replaceChildren();
    $('legend').replaceChildren();
    $('stats').hidden = true;
    setChartStatus('');
  }

  /* dygraphs wants one row per x: the series' points merged by timestamp, null where absent. */
  function mergeRows(results) {
    const byTs = new Map();
    results.forEach((r, col) => {
      for (const [ts, v] of r.points) {
        let row = byTs.get(ts);
        if (!row) {
          row = new Array(results.length + 1).fill(null);
          row[0] = ts;
          byTs.set(ts, row);
        }
        row[col + 1] = v;
      }
    });
    return Array.from(byTs.values()).sort((a, b) => a[0] - b[0]).map((row) => {
      row[0] = new Date(row[0] * 1000);
      return row;
    });
  }

  function describe(results) {
    const total = results.reduce((n, r) => n + r.points.length, 0);
    const sampled = results.filter((r) => r.step > 0);
    let text = total + ' points';
    if (results.length > 1) text += ' in ' + results.length + ' series';
    if (sampled.length > 0) {
      const how = (r) => r.agg + ' of ' + r.step + ' s buckets';
      const same = sampled.length === results.length && sampled.every((r) => how(r) === how(sampled[0]));
      text += ' (' + (same ? how(sampled[0]) : sampled.map((r) => r.name + ': ' + how(r)).join(', ')) +
        ', at most ' + POINTS_PER_PIXEL + ' points per pixel)';
    }
    if (results.some((r) => r.truncated)) text += ' (the first ' + MAX_POINTS + ' only: narrow the range)';
    return text + ' · drag to zoom, double-click to reset';
  }

  function draw(results) {
    const names = results.map((r) => r.name);
    const total = results.reduce((n, r) => n + r.points.length, 0);
    const keep = state.fetched;
    destroyChart();
    state.fetched = keep;
    state.points = results[0].points;
    if (total === 0) {
      setChartStatus('No records of ' + names.join(', ') + ' in this range.');
      return;
    }
    if (typeof window.Dygraph !== 'function') {
      showError('detail-error', 'The chart library is missing: install the libjs-dygraphs package ' +
        '(temporisd serves it from web_lib_root, /usr/share/javascript).');
      return;
    }
    const rows = mergeRows(results);
    state.chart = new window.Dygraph($('chart'), rows, {
      labels: ['Time'].concat(names),
      labelsUTC: true,
      labelsDiv: $('legend'),
      legend: 'always',
      colors: names.map(colorOf),
      strokeWidth: 1.6,
      connectSeparatedPoints: true,
      drawPoints: rows.length <= DRAW_POINTS_MAX,
      pointSize: 2.5,
      gridLineColor: '#e5e7eb',
      axisLineColor: '#9ca3af',
      axes: { y: { valueFormatter: fmtValue, axisLabelWidth: 64 } },
    });
    renderStats(results);
    setChartStatus(describe(results));
  }

  function renderStats(results) {
    const body = $('stats-body');
    body.replaceChildren();
    for (const r of results) {
      let min = Infinity;
      let max = -Infinity;
      for (const [, v] of r.points) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const tr = document.createElement('tr');
      tr.dataset.name = r.name;
      const cells = [r.name, String(r.points.length)].concat(r.points.length === 0 ? ['', '', '']
        : [fmtValue(min), fmtValue(max), fmtValue(r.points[r.points.length - 1][1])]);
      ['stat-name', 'stat-count', 'stat-min', 'stat-max', 'stat-last'].forEach((cls, i) => {
        const td = document.createElement('td');
        td.className = cls;
        if (i === 0) {
          const sw = document.createElement('span');
          sw.className = 'swatch';
          sw.style.background = sw.style.borderColor = colorOf(r.name);
          td.append(sw);
        }
        td.append(cells[i]);
        tr.append(td);
      });
      body.append(tr);
    }
    $('stats').hidden = false;
  }

  /* ---- auto-refresh ---- */

  function setAutoRefresh() {
    if (state.refreshTimer) clearInterval(state.refreshTimer);
    state.refreshTimer = null;
    const seconds = Number($('auto-refresh').value);
    if (seconds > 0) state.refreshTimer = setInterval(refreshRound, seconds * 1000);
  }

  /* New records move the series' last timestamps: re-read them, then the chart's range. */
  async function refreshRound() {
    if (!state.token || !state.selected || state.chosen.length === 0 || $('plot-form').hidden) return;
    const source = state.selected;
    const seq = state.loadSeq;
    try {
      const data = await api('GET', sourcePath(source, '/series'));
      if (seq !== state.loadSeq || source !== state.selected) return;
      const before = state.series.map((s) => s.name).join('\n');
      setSeries(data.series || []);
      if (state.series.map((s) => s.name).join('\n') !== before) {
        renderSeries();   /* plots too */
      } else {
        applyRange();
        plot(undefined, true);
      }
      state.refreshes++;
    } catch (err) {
      handleError(err, 'detail-error');
    }
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
    $('series-search').addEventListener('input', filterSeries);
    $('agg').addEventListener('change', () => plot());
    $('auto-refresh').addEventListener('change', setAutoRefresh);
    $('range').addEventListener('change', () => { applyRange(); if ($('range').value !== 'custom') plot(); });
    for (const id of ['start', 'end']) $(id).addEventListener('input', () => { $('range').value = 'custom'; });
    if (typeof window.Dygraph !== 'function') {
      showBanner('The chart library did not load: install libjs-dygraphs (served at /javascript/dygraphs/).');
    }
    /* Read-only handles for the browser test and for curious operators. */
    window.temporisDashboard = {
      chart: () => state.chart,
      points: () => state.points.slice(),
      fetched: () => (state.fetched ? JSON.parse(JSON.stringify(state.fetched)) : null),
      refreshes: () => state.refreshes,
    };
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved, true);
    else $('token').focus();
  }

  init();
}());
