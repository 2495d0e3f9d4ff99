/* evalbatch view: the little the pages need beyond HTML. Live counts while a run is in flight,
   filters that apply on change, and keyboard moves through the case table. Everything read from
   the API is written with textContent, never as HTML. Without JavaScript the pages still work. */
(function () {
  'use strict';
  var TERMINAL = ['done', 'canceled', 'needs_attention'];
  var POLL_MS = 2000;

  function getJSON(url, then) {
    fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { then(data); } })
      .catch(function () { /* the server went away: keep the last counts */ });
  }

  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }

  // A live run page: refresh the request counts; reload once the run has finished.
  function watchRun(url) {
    function apply(state) {
      setText(document.getElementById('run-status'), state.status);
      Object.keys(state.requests).forEach(function (step) {
        var counts = state.requests[step];
        document.querySelectorAll('[data-count^="' + step + '."]').forEach(function (cell) {
          var status = cell.getAttribute('data-count').split('.')[1];
          setText(cell, (counts[status] || 0).toLocaleString('en-US'));
        });
      });
      setText(document.getElementById('live-batches'), String(state.batches.length));
      if (TERMINAL.indexOf(state.status) >= 0) { window.location.reload(); return; }
      window.setTimeout(function () { getJSON(url, apply); }, POLL_MS);
    }
    window.setTimeout(function () { getJSON(url, apply); }, POLL_MS);
  }

  // The runs page: each run in flight refreshes its own row.
  function watchRow(row) {
    var url = row.getAttribute('data-state');
    function apply(state) {
      setText(row.querySelector('[data-field="status"]'), state.status);
      ['generate', 'grade'].forEach(function (step) {
        var p = state.progress[step];
        setText(row.querySelector('[data-field="' + step + '"]'), p ? p.done + ' / ' + p.total : '-');
      });
      setText(row.querySelector('[data-field="batches"]'), String(state.batches.length));
      if (TERMINAL.indexOf(state.status) >= 0) { window.location.reload(); return; }
      window.setTimeout(function () { getJSON(url, apply); }, POLL_MS);
    }
    window.setTimeout(function () { getJSON(url, apply); }, POLL_MS);
  }

  // Filters apply as soon as one changes; empty ones stay out of the URL, so it stays short
  // enough to share.
  function filtersApplyOnChange() {
    var form = document.getElementById('filters');
    if (!form) { return; }
    function dropEmpty() {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.value === '') { el.disabled = true; }
      });
    }
    form.addEventListener('submit', dropEmpty);
    window.addEventListener('pageshow', function () {  // back from the next page
      Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
    });
    form.querySelectorAll('select').forEach(function (select) {
      select.addEventListener('change', function () { dropEmpty(); form.submit(); });
    });
  }

  function typing(el) {
    return el && (el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.tagName === 'TEXTAREA');
  }

  // j/k or the arrows move between cases, Enter opens one (it is a link), / searches,
  // n/p turn the page.
  function keyboard() {
    var table = document.getElementById('case-table');
    if (!table) { return; }
    var links = Array.prototype.slice.call(table.querySelectorAll('a.case-link'));
    document.addEventListener('keydown', function (e) {
      if (e.altKey || e.ctrlKey || e.metaKey) { return; }
      if (typing(e.target)) {
        if (e.key === 'Escape') { e.target.blur(); }
        return;
      }
      var at = links.indexOf(document.activeElement);
      var move = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[e.key];
      if (move && links.length) {
        var next = at < 0 ? 0 : Math.min(links.length - 1, Math.max(0, at + move));
        links[next].focus();
        links[next].scrollIntoView({ block: 'nearest' });
        e.preventDefault();
      } else if (e.key === '/') {
        var q = document.getElementById('q');
        if (q) { q.focus(); q.select(); e.preventDefault(); }
      } else if (e.key === 'n' || e.key === 'p') {
        var page = document.querySelector('.pager a[rel="' + (e.key === 'n' ? 'next' : 'prev') + '"]');
        if (page) { window.location.assign(page.href); }
      }
    });
  }

  var live = document.body.getAttribute('data-live');
  if (live && document.getElementById('live-counts')) { watchRun(live); }
  document.querySelectorAll('tr.live-run[data-state]').forEach(watchRow);
  filtersApplyOnChange();
  keyboard();
})();
