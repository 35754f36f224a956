// openvgw console: the one script. Regions marked data-refresh are fetched again every data-every milliseconds while
// the page is visible and swapped in (the server renders them, escaped); a session that ended sends the page to the
// sign-in form. Open <details> stay open across a swap. Create forms disable their button once sent.
(function () {
  'use strict';
  function refresh(el) {
    var url = el.getAttribute('data-refresh');
    var every = parseInt(el.getAttribute('data-every') || '3000', 10);
    var last = null;
    function tick() {
      if (document.hidden) { setTimeout(tick, every); return; }
      fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
        .then(function (r) {
          if (r.redirected || r.status === 401) { window.location.assign('/console/sign-in'); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (text) {
          if (text !== null && text !== last) {
            var open = {};
            el.querySelectorAll('details[open] > summary').forEach(function (s) { open[s.textContent] = true; });
            el.innerHTML = text;
            el.querySelectorAll('details > summary').forEach(function (s) {
              if (open[s.textContent]) { s.parentElement.open = true; }
            });
            last = text;
          }
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-refresh]').forEach(refresh);
    // A create form is sent once: Huawei's API has no idempotency token to catch a double click.
    document.querySelectorAll('form.create').forEach(function (f) {
      f.addEventListener('submit', function () {
        f.querySelectorAll('button[type=submit]').forEach(function (b) { b.disabled = true; });
      });
    });
  });
  // A page brought back by the browser's Back button keeps its state: its buttons work again.
  window.addEventListener('pageshow', function () {
    document.querySelectorAll('form.create button[type=submit]').forEach(function (b) { b.disabled = false; });
  });
})();
