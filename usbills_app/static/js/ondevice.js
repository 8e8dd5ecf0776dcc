/* Recognition on the phone (window.USBills.onDevice): starts the worker that runs LiteRT.js on
   the served bundle (static/js/ondevice-worker.js) and hands it pictures. Anything that fails
   (no WebAssembly or workers, a runtime that cannot load, a blocked download) leaves `state` at
   'failed' or 'unavailable' and the page uploads pictures as before. */
(function (root) {
  'use strict';
  var U = root.USBills;
  var cfgEl = document.getElementById('page-config');
  if (!U || !U.pre || !cfgEl) return;
  var cfg = JSON.parse(cfgEl.textContent).ondevice || null;

  var api = {
    config: cfg,
    state: cfg ? 'off' : 'unavailable', // off | loading | ready | failed | unavailable
    error: null,
    loadMs: null,
    loadedUrls: [], // what the worker fetched: runtime files and bundle
    load: load,
    recognise: recognise,
    recogniseRgb: recogniseRgb
  };
  U.onDevice = api;

  var worker = null;
  var loading = null;
  var pending = {};
  var nextId = 1;

  function load() {
    if (loading) return loading;
    if (!cfg || typeof WebAssembly !== 'object' || typeof Worker !== 'function') {
      api.state = 'unavailable';
      loading = Promise.resolve(false);
      return loading;
    }
    api.state = 'loading';
    var t0 = performance.now();
    loading = new Promise(function (resolve) {
      var done = function (ok, error) {
        api.state = ok ? 'ready' : 'failed';
        api.error = error || null;
        if (ok) api.loadMs = performance.now() - t0;
        else if (worker) { worker.terminate(); worker = null; }
        resolve(ok);
      };
      try {
        worker = new Worker(cfg.worker);
      } catch (e) {
        done(false, String(e && e.message || e));
        return;
      }
      worker.onerror = function (ev) {
        ev.preventDefault();
        if (api.state === 'loading') done(false, ev.message || 'worker error');
      };
      worker.onmessage = function (ev) {
        var msg = ev.data || {};
        if (msg.type === 'loaded') { api.loadedUrls = msg.urls || []; done(true); }
        else if (msg.type === 'failed') done(false, msg.error);
        else if (msg.type === 'answer' && pending[msg.id]) {
          var p = pending[msg.id];
          delete pending[msg.id];
          if (msg.error) p.reject(new Error(msg.error)); else p.resolve(msg.result);
        }
      };
      worker.postMessage({ type: 'load', cfg: cfg, preprocess: cfg.preprocess });
    });
    return loading;
  }

  function ask(msg, transfer) {
    if (!worker || api.state !== 'ready') return Promise.reject(new Error('not ready'));
    var t0 = performance.now();
    return new Promise(function (resolve, reject) {
      msg.id = nextId++;
      pending[msg.id] = { resolve: resolve, reject: reject };
      msg.type = 'recognise';
      worker.postMessage(msg, transfer || []);
    }).then(function (r) {
      r.answer.timings_ms = { total: Math.round((performance.now() - t0) * 100) / 100 };
      return r;
    });
  }

  /* An RGB picture {data, width, height} -> {answer, probs, box} (tests and benchmarks). */
  function recogniseRgb(img) {
    var copy = new Uint8Array(img.data).buffer;
    return ask({ rgb: copy, width: img.width, height: img.height }, [copy]);
  }

  /* A canvas (the frame the page would upload) -> the API-shaped answer. */
  async function recognise(canvas) {
    var ctx = canvas.getContext('2d', { willReadFrequently: true });
    var data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    var buf = data.data.buffer;
    return (await ask({ rgba: buf, width: data.width, height: data.height }, [buf])).answer;
  }
})(window);
