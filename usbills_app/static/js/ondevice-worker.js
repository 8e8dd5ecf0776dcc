/* The worker that recognises notes on the phone: LiteRT.js (served by this site, from npm at
   build time) runs the served bundle's .tflite files on the server's path from pixels to an
   answer (preprocess.js). In a worker, so the page stays responsive to a screen reader while
   the runtime compiles (about a second) and while frames are recognised (tens of ms each).
   The CPU (Wasm) build only: it computes what the server's LiteRT computes, bit for bit on the
   int8 model; a GPU would not.
   Messages in: {type: 'load', cfg, preprocess}, {type: 'recognise', id, rgba | rgb, width,
   height}. Out: {type: 'loaded', urls}, {type: 'failed', error}, {type: 'answer', id, result} or
   {type: 'answer', id, error}. */
'use strict';
var cfg = null;
var lrt = null;
var models = {};

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

async function load(msg) {
  cfg = msg.cfg;
  importScripts(msg.preprocess);
  var base = new URL(cfg.runtime, self.location.href).href;
  lrt = await import(base + 'litert.js');
  // Emscripten finds its .wasm beside the script that loaded it: in a worker that is this
  // file's folder, so tell it where the runtime's files are. The runtime writes its INFO and
  // WARNING lines to stderr, which would be console errors: only its errors are kept.
  self.Module = {
    locateFile: function (name) { return base + name; },
    print: function () { /* nothing the page needs */ },
    printErr: function (text) { if (/^(ERROR|FATAL)/.test(text)) console.warn(text); }
  };
  await lrt.loadLiteRt(base);
  // No WebGPU device: the CPU build alone (see above), and no GPU probe on every visit.
  var env = await lrt.Environment.create({ webGpuDevice: null });
  var opts = { accelerator: 'wasm', environment: env };
  models.model = await lrt.loadAndCompile(new URL(cfg.model, self.location.href).href, opts);
  if (cfg.localiser) {
    models.localiser = await lrt.loadAndCompile(new URL(cfg.localiser.model, self.location.href).href, opts);
  }
  // One pass on a grey picture: the first run of a model is much slower than the next.
  var inp = cfg.input;
  var grey = new Uint8Array(inp.width * inp.height * 3).fill(128);
  await self.USBills.pre.recognise({ data: grey, width: inp.width, height: inp.height }, cfg, run);
}

/* One message at a time: a frame waits for the one before it. */
var queue = Promise.resolve();
self.onmessage = function (ev) {
  var msg = ev.data || {};
  queue = queue.then(function () {
    if (msg.type === 'load') {
      return load(msg).then(function () {
        // What it fetched (the runtime's Wasm build is the browser's pick), for the page to ask
        // the service worker to keep.
        var urls = performance.getEntriesByType('resource').map(function (e) { return e.name; });
        self.postMessage({ type: 'loaded', urls: urls });
      }, function (e) {
        self.postMessage({ type: 'failed', error: String(e && e.message || e) });
      });
    }
    if (msg.type === 'recognise') {
      var pre = self.USBills.pre;
      var img = msg.rgba
        ? pre.rgbOf({ data: new Uint8Array(msg.rgba), width: msg.width, height: msg.height })
        : { data: new Uint8Array(msg.rgb), width: msg.width, height: msg.height };
      return pre.recognise(img, cfg, run).then(function (result) {
        self.postMessage({ type: 'answer', id: msg.id, result: result });
      }, function (e) {
        self.postMessage({ type: 'answer', id: msg.id, error: String(e && e.message || e) });
      });
    }
    return null;
  });
};
