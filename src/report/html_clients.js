// The HTML report's per-client view (src/report/html_clients.rs writes the data).
//
// Values from the wire (SNIs, EHLO and DNS names) are hostile: they reach the page only as
// JSON in a data block and the DOM only through textContent and setAttribute, never as
// markup. The filters live in the address's fragment (#category=...&service=...&
// direction=...&q=...), so a filtered view can be shared as a link.
(function () {
  'use strict';
  var block = document.getElementById('client-data');
  var view = document.getElementById('client-view');
  if (!block || !view) return;
  var data = JSON.parse(block.textContent);
  var clients = data.clients;
  var header = data.header;
  var searchColumns = data.search.map(function (name) { return header.indexOf(name); });
  // The cells shown and filtered on, by column name.
  var at = {};
  header.forEach(function (name, i) { at[name] = i; });
  clients.forEach(function (c) {
    var value = function (name) { return c.csv[at[name]]; };
    c.ip = value('ip');
    c.via = value('via');
    c.direction = value('direction');
    c.primary = value('primary');
    c.categories = value('categories').split('; ').filter(Boolean);
    c.would_fail = value('would_fail') === 'yes' ? 'yes: ' + value('would_fail_reasons') : 'no';
    c.connections = value('connections');
    c.sni = value('sni');
    c.names = value('names');
    c.software = value('software');
    if (value('software_advice')) c.software += ' \u2014 fix: ' + value('software_advice');
    c.first_seen = shortTime(value('first_seen'));
    c.last_seen = shortTime(value('last_seen'));
  });

  // `2024-05-01 10:00:01` from an RFC 3339 time, as the other tables show it.
  function shortTime(ts) {
    if (!ts) return '-';
    return ts.length >= 19 ? ts.slice(0, 19).replace('T', ' ') : ts;
  }

  var controls = {
    category: document.getElementById('client-category'),
    service: document.getElementById('client-service'),
    direction: document.getElementById('client-direction'),
    q: document.getElementById('client-search')
  };
  var body = document.getElementById('client-table').tBodies[0];
  var count = document.getElementById('client-count');
  var download = document.getElementById('client-download');

  function option(select, value, label) {
    var o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }

  // Each filter offers the values present, with how many clients have each.
  function tally(values) {
    var n = {};
    clients.forEach(function (c) {
      values(c).forEach(function (v) { n[v] = (n[v] || 0) + 1; });
    });
    return n;
  }
  function fill(select, order, counts) {
    option(select, '', 'all');
    order.forEach(function (v) {
      if (counts[v]) option(select, v, v + ' (' + counts[v] + ')');
    });
  }
  var byCategory = tally(function (c) { return c.categories; });
  var byService = tally(function (c) { return c.services.map(function (s) { return s[0]; }); });
  var byDirection = tally(function (c) { return [c.direction]; });
  fill(controls.category, data.category_order, byCategory);
  fill(controls.service, Object.keys(byService).sort(), byService);
  fill(controls.direction, data.direction_order, byDirection);

  // Lower-cased once: the search looks at these columns of the row's CSV cells.
  clients.forEach(function (c) {
    c.haystack = searchColumns.map(function (i) { return c.csv[i].toLowerCase(); });
  });

  function filters() {
    return {
      category: controls.category.value,
      service: controls.service.value,
      direction: controls.direction.value,
      q: controls.q.value.trim().toLowerCase()
    };
  }

  function matches(c, f) {
    if (f.category && c.categories.indexOf(f.category) < 0) return false;
    if (f.direction && c.direction !== f.direction) return false;
    if (f.service && !c.services.some(function (s) { return s[0] === f.service; })) return false;
    if (f.q && !c.haystack.some(function (cell) { return cell.indexOf(f.q) >= 0; })) return false;
    return true;
  }

  function cell(tr, text, className) {
    var td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }

  function row(c) {
    var tr = document.createElement('tr');
    tr.className = c.primary;
    tr.setAttribute('data-ip', c.ip);
    tr.setAttribute('data-via', c.via);
    tr.setAttribute('data-direction', c.direction);
    cell(tr, c.via ? c.ip + ' via ' + c.via : c.ip);
    cell(tr, c.direction);
    cell(tr, c.primary).setAttribute('data-v', String(c.rank));
    cell(tr, c.categories.join(', '));
    cell(tr, c.would_fail);
    cell(tr, c.services.map(function (s) { return s[0] + ' (' + s[1] + ')'; }).join(', '));
    cell(tr, c.connections, 'n');
    cell(tr, c.offered);
    cell(tr, c.negotiated);
    cell(tr, c.failures);
    cell(tr, c.sni);
    cell(tr, c.names);
    cell(tr, c.software);
    cell(tr, c.first_seen);
    cell(tr, c.last_seen);
    return tr;
  }

  var shown = [];

  function apply() {
    var f = filters();
    shown = clients.filter(function (c) { return matches(c, f); });
    var rows = document.createDocumentFragment();
    var limit = Math.min(shown.length, data.max_rows);
    for (var i = 0; i < limit; i++) rows.appendChild(row(shown[i]));
    while (body.firstChild) body.removeChild(body.firstChild);
    body.appendChild(rows);
    // The rows are in report order again: no column shows as sorted.
    Array.prototype.forEach.call(body.parentNode.tHead.rows[0].cells, function (th) {
      th.classList.remove('asc', 'desc');
    });
    var text = shown.length + ' of ' + clients.length + ' clients';
    if (limit < shown.length) {
      text += '; the first ' + limit + ' are listed, the download holds all ' + shown.length;
    }
    count.textContent = text;
    view.setAttribute('data-matches', String(shown.length));
    view.setAttribute('data-listed', String(limit));
  }

  // RFC 4180 fields, each neutralised as the CSV report does (README, "Hostile values"):
  // a cell a spreadsheet would run as a formula gets a leading '.
  function csvField(value) {
    var v = String(value);
    if (/^[=+\-@\t\r]/.test(v)) v = "'" + v;
    if (/[",\r\n]/.test(v)) v = '"' + v.replace(/"/g, '""') + '"';
    return v;
  }
  function csvText() {
    var lines = [header.map(csvField).join(',')];
    shown.forEach(function (c) { lines.push(c.csv.map(csvField).join(',')); });
    return lines.join('\r\n') + '\r\n';
  }

  download.addEventListener('click', function () {
    var blob = new Blob([csvText()], { type: 'text/csv;charset=utf-8' });
    var link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = 'clients.csv';
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
  });

  // The fragment holds the filters: read on open and when it changes, written on each change.
  function fromFragment() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ''));
    ['category', 'service', 'direction'].forEach(function (k) {
      var v = p.get(k) || '';
      var select = controls[k];
      var known = Array.prototype.some.call(select.options, function (o) { return o.value === v; });
      // A link made on another census may name a value this one lacks: it matches nothing.
      if (!known) option(select, v, v + ' (0)');
      select.value = v;
    });
    controls.q.value = p.get('q') || '';
    apply();
    return p;
  }
  function toFragment() {
    var f = filters(), p = new URLSearchParams();
    ['category', 'service', 'direction'].forEach(function (k) { if (f[k]) p.set(k, f[k]); });
    if (controls.q.value.trim()) p.set('q', controls.q.value.trim());
    history.replaceState(null, '', '#' + p.toString());
  }
  ['category', 'service', 'direction'].forEach(function (k) {
    controls[k].addEventListener('change', function () { apply(); toFragment(); });
  });
  controls.q.addEventListener('input', function () { apply(); toFragment(); });
  window.addEventListener('hashchange', fromFragment);

  view.hidden = false;
  // `download=1` in the fragment downloads the filtered rows on open, for scripts.
  if (fromFragment().get('download') === '1') download.click();
  view.setAttribute('data-ready', 'yes');
})();
