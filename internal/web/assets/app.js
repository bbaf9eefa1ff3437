// The live calls page, without a framework: the table is updated in place
// (only cells whose text changed are touched, so nothing flickers), the
// remaining time counts down between refreshes, and ending a call is
// confirmed in the page. Without JavaScript the page refreshes itself and
// the End button asks for confirmation on a page of its own.
(function () {
  'use strict';
  var tbody = document.querySelector('#calls tbody');
  if (!tbody) return; // the script-less confirmation page
  var token = document.body.dataset.token;
  var filterForm = document.getElementById('filter');
  var ends = new Map(); // Call-ID -> when its time runs out (ms, this clock)
  var REFRESH_MS = 2000;
  document.getElementById('updated').textContent = 'Live';

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function duration(n) {
    if (n < 0) return '\u2014';
    var h = Math.floor(n / 3600), m = Math.floor(n / 60) % 60, s = n % 60;
    return h > 0 ? h + ':' + pad(m) + ':' + pad(s) : m + ':' + pad(s);
  }
  // Times say their date and zone, as the script-less page and the CLI
  // do: here the browser's zone, by its short name (EST, UTC) or offset
  // (GMT+1).
  var zoneName = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
  function zone(d) {
    var parts = zoneName.formatToParts(d);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].type === 'timeZoneName') return parts[i].value;
    }
    return '';
  }
  function timeOfDay(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' ' + zone(d);
  }
  function clock(iso) {
    if (!iso) return '\u2014';
    var d = new Date(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + timeOfDay(d);
  }
  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function setClass(el, cls) { if (el.className !== cls) el.className = cls; }

  // The end time is re-based on each refresh only when it moved by more
  // than a rounding step, so the countdown never jumps back and forth.
  function setEnd(id, remaining, at) {
    if (remaining < 0) { ends.delete(id); return; }
    var end = at + remaining * 1000, old = ends.get(id);
    if (old === undefined || Math.abs(old - end) > 1500) ends.set(id, end);
  }

  Array.prototype.forEach.call(tbody.rows, function (tr) {
    setEnd(tr.dataset.callid, +tr.querySelector('td.remaining').dataset.remaining, Date.now());
  });

  function tick() {
    var now = Date.now();
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      var end = ends.get(tr.dataset.callid), td = tr.cells[6];
      if (end === undefined) return;
      var left = Math.max(0, Math.ceil((end - now) / 1000));
      setText(td, duration(left));
      setClass(td, 'remaining' + (left <= 60 ? ' low' : ''));
    });
  }

  function cell(tr, cls, label) {
    var td = document.createElement('td');
    td.className = cls;
    td.dataset.label = label;
    tr.appendChild(td);
    return td;
  }

  function newRow(s) {
    var tr = document.createElement('tr');
    tr.dataset.callid = s.call_id;
    cell(tr, 'callid', 'Call-ID');
    cell(tr, 'party', 'Party');
    cell(tr, 'dest', 'Destination');
    cell(tr, 'state', 'State').appendChild(document.createElement('span'));
    cell(tr, 'answered', 'Answered').appendChild(document.createElement('time'));
    cell(tr, 'limit', 'Limit');
    cell(tr, 'remaining', 'Remaining');
    var form = document.createElement('form');
    form.method = 'post'; form.action = '/terminate'; form.className = 'end';
    [['token', token], ['call_id', s.call_id]].forEach(function (f) {
      var i = document.createElement('input');
      i.type = 'hidden'; i.name = f[0]; i.value = f[1];
      form.appendChild(i);
    });
    var b = document.createElement('button');
    b.type = 'submit'; b.className = 'danger'; b.title = 'End this call'; b.textContent = 'End';
    form.appendChild(b);
    cell(tr, 'end', '').appendChild(form);
    return tr;
  }

  function fillRow(tr, s) {
    setText(tr.cells[0], s.call_id);
    setText(tr.cells[1], s.party);
    setText(tr.cells[2], s.destination);
    var badge = tr.cells[3].firstChild;
    setClass(badge, 'badge ' + s.state);
    setText(badge, s.state === 'in-progress' ? 'in progress' : s.state);
    var t = tr.cells[4].firstChild;
    if (t.getAttribute('datetime') !== (s.answered || '')) t.setAttribute('datetime', s.answered || '');
    setText(t, clock(s.answered));
    setText(tr.cells[5], s.limit < 0 ? 'none' : duration(s.limit));
    if (s.remaining < 0) setText(tr.cells[6], '\u2014');
  }

  function render(list, at) {
    var seen = new Set(), rows = new Map();
    Array.prototype.forEach.call(tbody.rows, function (tr) { rows.set(tr.dataset.callid, tr); });
    list.forEach(function (s, i) {
      var tr = rows.get(s.call_id) || newRow(s);
      fillRow(tr, s);
      setEnd(s.call_id, s.remaining, at);
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
      seen.add(s.call_id);
    });
    rows.forEach(function (tr, id) {
      if (!seen.has(id)) { tr.remove(); ends.delete(id); }
    });
    document.getElementById('empty').hidden = list.length > 0;
    tick();
  }

  function chip(id, value, cls) {
    var li = document.getElementById(id);
    setText(li.querySelector('b'), value);
    setClass(li, 'chip ' + cls);
  }

  // The same rules as chips() in page.go.
  // matched: how many match the filter (X-Total-Count), more than shown
  // when the page's limit cut the list.
  function renderStats(st, shown, filtered, matched) {
    // Up: not unreachable (an idle engine is up), as enginesUp in page.go.
    var up = st.engines ? st.engines.filter(function (e) { return e.state !== 'unreachable'; }).length : st.engines_up;
    var e = st.engines_total === 0 ? ['none (all calls postpaid)', 'muted'] :
      [up + '/' + st.engines_total + ' up',
        up === 0 ? 'bad' : up < st.engines_total ? 'warn' : 'good'];
    chip('engines', e[0], e[1]);
    chip('dialogs', String(st.dialog_ends_pending), st.dialog_ends_pending > 0 ? 'warn' : 'good');
    chip('debits', String(st.debits_waiting), st.debits_waiting > 0 ? 'warn' : 'good');
    var sl = st.state_write_errors > 0 ? [st.state_write_errors + ' write errors', 'bad'] :
      !st.state_sync ? ['not fsynced (sync = no)', 'warn'] :
        ['durable, fsync ' + st.state_last_sync_ms.toFixed(1) + ' ms', 'good'];
    chip('statelog', sl[0], sl[1]);
    var pending = st.sessions.pending || 0, inProgress = st.sessions['in-progress'] || 0, total = pending + inProgress;
    var line = (total === 1 ? '1 call' : total + ' calls') + ': ' + inProgress + ' in progress, ' +
      pending + ' pending, ' + st.parties + ' parties';
    if (shown < matched) line = shown + ' oldest shown of ' + matched + ' matching; ' + line;
    else if (filtered) line = shown + ' shown of ' + line;
    setText(document.getElementById('count'), line);
  }

  function query() {
    var p = new URLSearchParams();
    var party = filterForm.elements.party.value.trim(), state = filterForm.elements.state.value;
    if (party) p.set('party', party);
    if (state) p.set('state', state);
    return p.toString();
  }

  function getJSON(url, withTotal) {
    return fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.error || r.statusText);
          if (withTotal) return { body: body, total: Number(r.headers.get('X-Total-Count') || body.length) };
          return body;
        });
      });
  }

  // The page's own ?limit= (how many calls it shows) carries over.
  function limitParam() {
    var limit = new URLSearchParams(window.location.search).get('limit');
    return limit ? 'limit=' + encodeURIComponent(limit) : '';
  }

  var timer = null, busy = false;
  function refresh() {
    clearTimeout(timer);
    if (busy) { timer = setTimeout(refresh, 200); return; }
    busy = true;
    var q = query(), at = Date.now();
    var params = [q, limitParam()].filter(Boolean).join('&');
    Promise.all([getJSON('/api/v1/sessions' + (params ? '?' + params : ''), true), getJSON('/api/v1/stats')])
      .then(function (r) {
        render(r[0].body, at);
        renderStats(r[1], r[0].body.length, q !== '', r[0].total);
        document.querySelector('footer').classList.remove('offline');
        setText(document.getElementById('updated'), 'Live, updated ' + timeOfDay(new Date()));
      })
      .catch(function (err) {
        document.querySelector('footer').classList.add('offline');
        setText(document.getElementById('updated'), 'Not updated since ' + timeOfDay(new Date(at)) + ': ' + err.message);
      })
      .then(function () { busy = false; timer = setTimeout(refresh, REFRESH_MS); });
  }

  filterForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    // The page's ?limit= stays in the address: refresh reads it there.
    var q = [query(), limitParam()].filter(Boolean).join('&');
    history.replaceState(null, '', q ? '?' + q : location.pathname);
    refresh();
  });
  var debounce = null;
  filterForm.addEventListener('input', function () {
    clearTimeout(debounce);
    debounce = setTimeout(function () { filterForm.requestSubmit(); }, 250);
  });

  var result = document.getElementById('result');
  function say(text, ok) {
    result.textContent = text;
    result.className = 'result ' + (ok ? 'ok' : 'bad');
    result.hidden = false;
  }

  var dialog = document.getElementById('confirm'), pendingForm = null;
  tbody.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.classList.contains('end')) return;
    ev.preventDefault();
    pendingForm = form;
    var tr = form.closest('tr');
    setText(document.getElementById('confirm-text'),
      tr.cells[1].textContent + ' \u2192 ' + tr.cells[2].textContent + ' (' + tr.cells[0].textContent + ')');
    dialog.returnValue = '';
    dialog.showModal();
  });
  dialog.addEventListener('close', function () {
    var form = pendingForm;
    pendingForm = null;
    if (!form || dialog.returnValue !== 'end') return;
    var body = new URLSearchParams(new FormData(form));
    body.set('confirm', 'yes');
    form.querySelector('button').disabled = true;
    fetch('/terminate', {
      method: 'POST', body: body, credentials: 'same-origin',
      headers: { Accept: 'application/json' }
    }).then(function (r) {
      // Green only when the call is over, as on the script-less page: an
      // end asked but not confirmed, or due at answer, is not done yet.
      return r.json().then(function (b) { say(b.message || b.error, r.ok && b.terminated === true); });
    }).catch(function (err) {
      say('Could not reach callcontrold: ' + err.message + '. The call may still be up.', false);
    }).then(function () {
      form.querySelector('button').disabled = false;
      refresh();
    });
  });

  setInterval(tick, 250);
  refresh();
})();
