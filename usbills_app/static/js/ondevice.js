/* Recognition on the phone (window.USBills.onDevice): loads LiteRT.js (served by this site,
   static/vendor/, from npm at build time) and the served bundle's .tflite files, and runs the
   server's path on a picture (static/js/preprocess.js). Anything that fails (no WebAssembly,
   a runtime that cannot load, a blocked download) leaves `state` at 'failed' and the page
   uploads pictures as before. The CPU (Wasm) build only: it computes what the server's LiteRT
   computes, bit for bit on the int8 model; a GPU would not. */
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
    load: load,
    recognise: recognise,
    recogniseRgb: recogniseRgb
  };
  U.onDevice = api;

  var lrt = null;
  var models = {};
  var loading = null;
  var queue = Promise.resolve(); // one inference at a time

  function load() {
    if (loading) return loading;
    if (!cfg || typeof WebAssembly !== 'object') {
      api.state = 'unavailable';
      loading = Promise.resolve(false);
      return loading;
    }
    api.state = 'loading';
    var t0 = performance.now();
    loading = (async function () {
      lrt = await import(cfg.runtime + 'litert.js');
      await lrt.loadLiteRt(cfg.runtime);
      // No WebGPU device: the CPU build alone (see above), and no GPU probe on every visit.
      var env = await lrt.Environment.create({ webGpuDevice: null });
      var opts = { accelerator: 'wasm', environment: env };
      var files = [['model', cfg.model]];
      if (cfg.localiser) files.push(['localiser', cfg.localiser.model]);
      for (var i = 0; i < files.length; i++) {
        models[files[i][0]] = await lrt.loadAndCompile(files[i][1], opts);
      }
      // One pass on a grey picture: the first run of a model is much slower than the next.
      var inp = cfg.input, grey = new Uint8Array(inp.width * inp.height * 3).fill(128);
      await recogniseRgb({ data: grey, width: inp.width, height: inp.height });
      api.loadMs = performance.now() - t0;
      api.state = 'ready';
      return true;
    })().catch(function (e) {
      api.state = 'failed';
      api.error = String(e && e.message || e);
      return false;
    });
    return loading;
  }

  async function run(which, input, shape) {
    var t = new lrt.Tensor(input, shape);
    var outs;
    try {
      outs = await models[which].run(t);
    } finally {
      t.delete();
    }
    var data = outs[0].toTypedArray().slice();
    outs.forEach(function (o) { o.delete(); });
    return data;
  }

  /* An RGB picture {data, width, height} -> {answer, probs, box}, one at a time. */
  function recogniseRgb(img) {
    var t0 = performance.now();
    var next = queue.then(function () { return U.pre.recognise(img, cfg, run); })
      .then(function (r) {
        r.answer.timings_ms = { total: Math.round((performance.now() - t0) * 100) / 100 };
        return r;
      });
    queue = next.catch(function () { /* the caller sees the error; the queue goes on */ });
    return next;
  }

  /* A canvas (the frame the page would upload) -> the API-shaped answer. */
  async function recognise(canvas) {
    var ctx = canvas.getContext('2d', { willReadFrequently: true });
    var img = U.pre.rgbOf(ctx.getImageData(0, 0, canvas.width, canvas.height));
    return (await recogniseRgb(img)).answer;
  }
})(window);
