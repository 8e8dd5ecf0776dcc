/* The service worker: keeps the page, its assets, the browser runtime and the model bundle on
   the phone, so the page opens and recognises notes with no network after the first visit.
   Served as /sw.js by usbills_app/offline.py, which puts VERSION (a hash of everything kept,
   the bundle's sha256 among it) and PRECACHE (the URLs) in front of this file: a new bundle is
   a new worker, installed on the next online visit, and the old cache goes.
   - Pages: the network first (always the newest page), the kept copy when offline.
   - Static files with a content hash, the runtime and bundle files: their URLs change with
     their content, so a kept copy is always right: from the cache first.
   - The API (pictures sent to the server) is never touched. */
/* global VERSION, PRECACHE */
'use strict';
var CACHE = 'usbills-' + VERSION;

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    // One by one: a file that cannot be had (e.g. a site built without the runtime) must not
    // stop the rest from being kept.
    return Promise.all(PRECACHE.map(function (url) {
      return cache.match(url).then(function (hit) {
        return hit || cache.add(url).catch(function () { /* fetched when needed */ });
      });
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) {
      return k.indexOf('usbills-') === 0 && k !== CACHE;
    }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

/* Whether a newer worker has taken over (browsers without self.serviceWorker: not known). */
function replaced() {
  var me = self.serviceWorker, active = self.registration.active;
  return Boolean(me && active && active !== me);
}

/* This worker's cache while it is still the current one: a newer worker deletes it on activate,
   and caches.open would make it again (left behind) for a write that lands after that. */
function ownCache() {
  if (replaced()) return Promise.resolve(null);
  return caches.has(CACHE).then(function (has) { return has ? caches.open(CACHE) : null; });
}

/* After a write: the newer worker's clean-up can run between ownCache's check and the write,
   which then makes this cache again; checking once more after the write closes that gap. */
function tidy() {
  return replaced() ? caches.delete(CACHE) : null;
}

/* Files whose URL changes with their content: static files with a content hash (?v=), the
   runtime's versioned folder, the bundle's files (named by their sha256). */
function keepable(url) {
  if (url.origin !== self.location.origin) return false;
  var path = url.pathname;
  return (path.indexOf('/static/') >= 0 && url.searchParams.has('v')) ||
    path.indexOf('/static/vendor/') >= 0 || path.indexOf('/bundle/') >= 0;
}

/* The page asks to keep what it loaded and the worker could not have known: the page itself
   (in its language) and the runtime's Wasm build that this browser picked. */
self.addEventListener('message', function (event) {
  var data = event.data || {};
  if (data.type !== 'keep' || !Array.isArray(data.urls)) return;
  event.waitUntil(ownCache().then(function (cache) {
    if (!cache) return null;
    return Promise.all(data.urls.map(function (u) {
      var url = new URL(u, self.location.href);
      if (url.origin !== self.location.origin) return null;
      return cache.match(url.href, { ignoreVary: true }).then(function (hit) {
        return hit || cache.add(url.href).catch(function () { /* offline: next time */ });
      });
    })).then(tidy);
  }));
});

self.addEventListener('fetch', function (event) {
  var req = event.request;
  if (req.method !== 'GET') return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.indexOf('/api/') >= 0) return;
  if (req.mode === 'navigate') {
    event.respondWith(fetch(req).then(function (resp) {
      if (resp.ok) {
        var copy = resp.clone();
        ownCache().then(function (cache) { return cache && cache.put(req, copy).then(tidy); });
      }
      return resp;
    }).catch(function () {
      return ownCache().then(function (cache) {
        if (!cache) return Response.error();
        return cache.match(req, { ignoreVary: true }).then(function (hit) {
          // Another language's page is better than the browser's error page.
          return hit || cache.keys().then(function (reqs) {
            var page = reqs.filter(function (r) {
              return new URL(r.url).pathname === new URL(self.registration.scope).pathname;
            })[0];
            return page ? cache.match(page, { ignoreVary: true }) : Response.error();
          });
        });
      });
    }));
    return;
  }
  if (!keepable(url)) return;
  event.respondWith(ownCache().then(function (cache) {
    if (!cache) return fetch(req);
    return cache.match(req, { ignoreVary: true }).then(function (hit) {
      return hit || fetch(req).then(function (resp) {
        if (resp.ok) cache.put(req, resp.clone()).then(tidy);
        return resp;
      });
    });
  }));
});
