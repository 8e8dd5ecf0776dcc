/* The server's path from pixels to an answer, in the browser (window.USBills.pre): resize,
   normalise, find the note with the localiser's heat map, crop, classify, explain. Each step
   computes what usbills_app/imaging.py, locate.py, runtime.py and predict_service.py compute,
   to the bit where the server is exact: the int8 model's logits move in steps, so one pixel
   off can move a probability across a threshold. A browser test runs the same pixels through
   both (tests/browser/test_ondevice.py). No DOM, no network; plain ES2017. Loaded by the page
   (its functions are tested there) and by the worker that runs the models
   (static/js/ondevice-worker.js). */
(function (root) {
  'use strict';
  var U = root.USBills || (root.USBills = {});
  var f32 = Math.fround;

  /* ---------- resize: Pillow's Image.resize(size, BILINEAR, reducing_gap=2.0) on RGB ---------- */
  // Pillow (libImaging/Resample.c) resamples 8-bit images with a triangle filter widened by the
  // downscale factor, weights rounded to 22-bit fixed point, one horizontal then one vertical
  // pass, each rounded and clipped to 0..255; a shrink by 4x or more first averages whole
  // blocks (libImaging/Reduce.c).
  var PRECISION_BITS = 22;
  var ONE = 1 << PRECISION_BITS;
  var HALF = 1 << (PRECISION_BITS - 1);

  function triangle(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  }

  /* Fixed-point weights and first source index of each output index, for one axis; the
     source span is in0..in1 (float32, as Pillow passes its box to C). */
  function coefficients(inSize, outSize, in0, in1) {
    if (in0 === undefined) { in0 = 0; in1 = inSize; }
    var scale = f32(f32(in1) - f32(in0)) / outSize;
    var filterscale = scale < 1 ? 1 : scale;
    var support = filterscale; // the triangle's support is 1
    var ksize = Math.ceil(support) * 2 + 1;
    var weights = new Int32Array(outSize * ksize);
    var first = new Int32Array(outSize);
    var count = new Int32Array(outSize);
    var w = new Float64Array(ksize);
    for (var xx = 0; xx < outSize; xx++) {
      var center = f32(in0) + (xx + 0.5) * scale;
      var ss = 1 / filterscale;
      var xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      var xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      var total = 0;
      for (var x = 0; x < xmax; x++) {
        w[x] = triangle((x + xmin - center + 0.5) * ss);
        total += w[x];
      }
      for (x = 0; x < xmax; x++) {
        var k = total !== 0 ? w[x] / total : w[x];
        weights[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
      }
      first[xx] = xmin;
      count[xx] = xmax;
    }
    return { ksize: ksize, weights: weights, first: first, count: count };
  }

  function clip8(ss) {
    var v = ss >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  /* Pillow's Image.reduce((fx, fy)): the mean of each fx x fy block (the last row and column
     of blocks may be partial), rounded as libImaging/Reduce.c does: a 24-bit fixed-point
     multiplier computed in float32. */
  function reduce(img, fx, fy) {
    var inW = img.width, inH = img.height, src = img.data;
    var outW = Math.ceil(inW / fx), outH = Math.ceil(inH / fy);
    var out = new Uint8Array(outW * outH * 3);
    var multipliers = {};
    for (var y = 0; y < outH; y++) {
      var y0 = y * fy, y1 = Math.min(y0 + fy, inH);
      for (var x = 0; x < outW; x++) {
        var x0 = x * fx, x1 = Math.min(x0 + fx, inW);
        var n = (x1 - x0) * (y1 - y0);
        var mul = multipliers[n];
        if (mul === undefined) {
          mul = multipliers[n] = Math.trunc(f32(f32(4294967296) / f32(256 * n)));
        }
        var amend = Math.floor(n / 2), s0 = amend, s1 = amend, s2 = amend;
        for (var yy = y0; yy < y1; yy++) {
          for (var xx = x0; xx < x1; xx++) {
            var p = (yy * inW + xx) * 3;
            s0 += src[p]; s1 += src[p + 1]; s2 += src[p + 2];
          }
        }
        var o = (y * outW + x) * 3;
        // (s * mul) >> 24 without leaving exact integers: s < 2^24 and mul < 2^24.
        out[o] = Math.floor(s0 * mul / 16777216) & 255;
        out[o + 1] = Math.floor(s1 * mul / 16777216) & 255;
        out[o + 2] = Math.floor(s2 * mul / 16777216) & 255;
      }
    }
    return { data: out, width: outW, height: outH };
  }

  /* img: {data: RGB bytes (3 a pixel), width, height} -> the same at outW x outH, as Pillow's
     img.resize((outW, outH), BILINEAR, reducing_gap=2.0): a shrink by 4x or more is first
     reduced by whole factors, then resampled from the matching fractional box. */
  function resize(img, outW, outH) {
    var fx = Math.trunc(img.width / outW / 2) || 1, fy = Math.trunc(img.height / outH / 2) || 1;
    if (fx > 1 || fy > 1) {
      var reduced = reduce(img, fx, fy);
      return resample(reduced, outW, outH, [0, 0, img.width / fx, img.height / fy]);
    }
    if (img.width === outW && img.height === outH) {
      return { data: img.data.slice(), width: outW, height: outH };
    }
    return resample(img, outW, outH, [0, 0, img.width, img.height]);
  }

  /* Pillow's two-pass resample (ImagingResampleInner) of `box` (float32) to outW x outH. */
  function resample(img, outW, outH, box) {
    var inW = img.width, inH = img.height;
    var b = box.map(f32);
    var src = img.data, rowOffset = 0;
    var vert = coefficients(inH, outH, b[1], b[3]);
    var needH = outW !== inW || b[0] !== 0 || b[2] !== outW;
    var needV = outH !== inH || b[1] !== 0 || b[3] !== outH;
    var w = inW;
    if (needH) {
      // Horizontal pass, only over the rows the vertical pass reads.
      var yFirst = vert.first[0];
      var yLast = vert.first[outH - 1] + vert.count[outH - 1];
      var hor = coefficients(inW, outW, b[0], b[2]);
      var tmp = new Uint8Array(outW * (yLast - yFirst) * 3);
      for (var y = yFirst; y < yLast; y++) {
        var row = y * inW * 3, out = (y - yFirst) * outW * 3;
        for (var xx = 0; xx < outW; xx++) {
          var xmin = hor.first[xx], n = hor.count[xx], kb = xx * hor.ksize;
          var s0 = HALF, s1 = HALF, s2 = HALF;
          for (var x = 0; x < n; x++) {
            var k = hor.weights[kb + x], p = row + (x + xmin) * 3;
            s0 += src[p] * k; s1 += src[p + 1] * k; s2 += src[p + 2] * k;
          }
          tmp[out + xx * 3] = clip8(s0);
          tmp[out + xx * 3 + 1] = clip8(s1);
          tmp[out + xx * 3 + 2] = clip8(s2);
        }
      }
      src = tmp; rowOffset = yFirst; w = outW;
      if (!needV) return { data: tmp, width: outW, height: yLast - yFirst };
    }
    if (!needV) return { data: src.slice(), width: w, height: inH };
    var dst = new Uint8Array(w * outH * 3);
    for (var yy = 0; yy < outH; yy++) {
      var ymin = vert.first[yy] - rowOffset, m = vert.count[yy], vb = yy * vert.ksize;
      for (var xx2 = 0; xx2 < w; xx2++) {
        var t0 = HALF, t1 = HALF, t2 = HALF;
        for (var j = 0; j < m; j++) {
          var kv = vert.weights[vb + j], q = ((j + ymin) * w + xx2) * 3;
          t0 += src[q] * kv; t1 += src[q + 1] * kv; t2 += src[q + 2] * kv;
        }
        var o = (yy * w + xx2) * 3;
        dst[o] = clip8(t0); dst[o + 1] = clip8(t1); dst[o + 2] = clip8(t2);
      }
    }
    return { data: dst, width: w, height: outH };
  }

  /* RGBA ImageData-like {data, width, height} -> RGB bytes. */
  function rgbOf(imageData) {
    var d = imageData.data, n = imageData.width * imageData.height;
    var out = new Uint8Array(n * 3);
    for (var i = 0, j = 0; i < n; i++, j += 4) {
      out[i * 3] = d[j]; out[i * 3 + 1] = d[j + 1]; out[i * 3 + 2] = d[j + 2];
    }
    return { data: out, width: imageData.width, height: imageData.height };
  }

  /* Pillow's crop (whole pixels; the box is inside the picture). */
  function crop(img, left, top, right, bottom) {
    var w = right - left, h = bottom - top;
    var out = new Uint8Array(w * h * 3);
    for (var y = 0; y < h; y++) {
      var from = ((y + top) * img.width + left) * 3;
      out.set(img.data.subarray(from, from + w * 3), y * w * 3);
    }
    return { data: out, width: w, height: h };
  }

  /* ---------- normalise: imaging.to_array in float32 (x * scale / std - mean / std) ---------- */
  function affine(inp) {
    var mean = inp.mean || [0, 0, 0], std = inp.std || [1, 1, 1];
    var scale = f32(inp.scale === undefined ? 1 : inp.scale);
    var mul = [], add = [];
    for (var c = 0; c < 3; c++) {
      mul.push(f32(scale / f32(std[c])));
      add.push(f32(f32(-f32(mean[c])) / f32(std[c])));
    }
    return { mul: mul, add: add };
  }

  /* RGB picture -> the model's float32 NHWC input at width x height, normalised as `inp` says. */
  function toInput(img, inp, width, height) {
    var r = resize(img, width, height);
    var a = affine(inp);
    var x = new Float32Array(width * height * 3);
    for (var i = 0; i < x.length; i += 3) {
      for (var c = 0; c < 3; c++) x[i + c] = f32(f32(r.data[i + c] * a.mul[c]) + a.add[c]);
    }
    return x;
  }

  /* ---------- sums as NumPy makes them (pairwise, in float32) ---------- */
  function pairwiseSum(a, lo, n) {
    var i, res;
    if (n < 8) {
      res = 0;
      for (i = 0; i < n; i++) res = f32(res + a[lo + i]);
      return res;
    }
    if (n <= 128) {
      var r = [];
      for (i = 0; i < 8; i++) r.push(a[lo + i]);
      for (i = 8; i < n - (n % 8); i += 8) {
        for (var j = 0; j < 8; j++) r[j] = f32(r[j] + a[lo + i + j]);
      }
      res = f32(f32(f32(r[0] + r[1]) + f32(r[2] + r[3])) + f32(f32(r[4] + r[5]) + f32(r[6] + r[7])));
      for (; i < n; i++) res = f32(res + a[lo + i]);
      return res;
    }
    var n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return f32(pairwiseSum(a, lo, n2) + pairwiseSum(a, lo + n2, n - n2));
  }

  /* ---------- locate.py: from the heat map to the crop box ---------- */
  var WHOLE_FRAME = 0.6;
  var MIN_CELLS = 2;

  /* Cells (row-major indices) of the 4-connected blob >= threshold with the largest summed
     heat, or null. */
  function strongestBlob(heat, grid, threshold) {
    var t = f32(threshold); // NumPy compares a float32 array with the threshold in float32
    var seen = new Uint8Array(grid * grid);
    var best = null, bestMass = 0;
    for (var start = 0; start < grid * grid; start++) {
      if (seen[start] || !(heat[start] >= t)) continue;
      var blob = new Uint8Array(grid * grid), queue = [start], count = 0;
      seen[start] = 1;
      while (queue.length) {
        var c = queue.shift(), cy = Math.floor(c / grid), cx = c % grid;
        blob[c] = 1;
        count++;
        var near = [[cy - 1, cx], [cy + 1, cx], [cy, cx - 1], [cy, cx + 1]];
        for (var i = 0; i < 4; i++) {
          var ny = near[i][0], nx = near[i][1], nc = ny * grid + nx;
          if (ny >= 0 && ny < grid && nx >= 0 && nx < grid && heat[nc] >= t && !seen[nc]) {
            seen[nc] = 1;
            queue.push(nc);
          }
        }
      }
      var cells = [];
      for (var k = 0; k < grid * grid; k++) if (blob[k]) cells.push(heat[k]);
      var mass = pairwiseSum(cells, 0, cells.length);
      if (count >= MIN_CELLS && mass > bestMass) { best = blob; bestMass = mass; }
    }
    return best;
  }

  function boxFromHeatmap(heat, grid, threshold) {
    var blob = strongestBlob(heat, grid, threshold);
    if (!blob) return null;
    var x0 = grid, y0 = grid, x1 = -1, y1 = -1;
    for (var c = 0; c < grid * grid; c++) {
      if (!blob[c]) continue;
      var y = Math.floor(c / grid), x = c % grid;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    return [x0 / grid, y0 / grid, (x1 + 1) / grid, (y1 + 1) / grid];
  }

  function expand(box, margin) {
    var mx = (box[2] - box[0]) * margin, my = (box[3] - box[1]) * margin;
    return [Math.max(0, box[0] - mx), Math.max(0, box[1] - my),
      Math.min(1, box[2] + mx), Math.min(1, box[3] + my)];
  }

  function useWhole(box) {
    return box === null || (box[2] - box[0]) * (box[3] - box[1]) >= WHOLE_FRAME;
  }

  function locate(heat, grid, threshold, margin) {
    var box = boxFromHeatmap(heat, grid, threshold);
    if (box === null) return null;
    box = expand(box, margin);
    return useWhole(box) ? null : box;
  }

  /* Python's round(): halves go to the even neighbour. */
  function roundHalfEven(v) {
    var f = Math.floor(v), d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }

  /* locate.crop: the picture the classifier sees. */
  function cropTo(img, box) {
    if (useWhole(box)) return img;
    var W = img.width, H = img.height;
    var left = Math.trunc(box[0] * W), top = Math.trunc(box[1] * H);
    return crop(img, left, top, Math.max(left + 1, roundHalfEven(box[2] * W)),
      Math.max(top + 1, roundHalfEven(box[3] * H)));
  }

  /* ---------- runtime.as_probabilities and predict_service.explain ---------- */
  function asProbabilities(out) {
    var p = Float32Array.from(out);
    var total = pairwiseSum(p, 0, p.length);
    if (total > 0) for (var i = 0; i < p.length; i++) p[i] = f32(p[i] / total);
    return p;
  }

  function round4(v) { return Math.round(v * 1e4) / 1e4; } // as predict_service.note_box
  function round6(v) { return Math.round(v * 1e6) / 1e6; } // as predict_service._entry

  /* The API's per-frame answer (docs/api.md) for one probability vector; cfg is the page's
     "ondevice" config (classes with their display names, threshold, model). */
  function explain(probs, cfg) {
    var classes = cfg.classes, neg = -1;
    for (var i = 0; i < classes.length; i++) if (classes[i].negative) neg = i;
    var order = [];
    for (i = 0; i < probs.length; i++) order.push(i);
    order.sort(function (a, b) { return probs[b] - probs[a] || a - b; }); // stable, descending
    var top = order[0], p = probs[top];
    var identified = top !== neg && p >= cfg.threshold;
    var noObject = top === neg && p >= cfg.threshold;
    var entry = function (k) {
      return { label: classes[k].label, display_name: classes[k].display_name,
        value: classes[k].value, confidence: round6(probs[k]) };
    };
    var cands = order.filter(function (k) { return k !== neg; }).slice(0, 2);
    var first = entry(top);
    var name = function (k) { return classes[k].display_name; };
    // As predict_service.explain: the message names only likely candidates (cfg.likely).
    var named = neg < 0 ? cands
      : cands.filter(function (k) { return probs[k] >= cfg.likely; });
    var message = identified || noObject ? name(top)
      : !named.length ? name(neg)
        : named.length >= 2 ? cfg.unsure.replace('{a}', name(named[0])).replace('{b}', name(named[1]))
          : cfg.unsure_one.replace('{a}', name(named[0]));
    return {
      identified: identified, label: first.label, display_name: first.display_name,
      value: first.value, confidence: first.confidence, no_object: noObject,
      message: message, candidates: cands.map(entry),
      top_k: order.map(entry), threshold: cfg.threshold, model: cfg.model_ref,
      on_device: true
    };
  }

  /* The whole path for one RGB picture. run(which, input Float32Array, [1, h, w, 3]) returns a
     promise of the model's output ('model' or 'localiser'). Resolves to {answer, probs, box}. */
  async function recognise(img, cfg, run) {
    var box = null;
    var loc = cfg.localiser;
    if (loc) {
      var heat = await run('localiser', toInput(img, cfg.input, loc.width, loc.height),
        [1, loc.height, loc.width, 3]);
      box = locate(heat, loc.grid, loc.threshold, loc.margin);
    }
    var inp = cfg.input;
    var out = await run('model', toInput(cropTo(img, box), inp, inp.width, inp.height),
      [1, inp.height, inp.width, 3]);
    var probs = asProbabilities(out);
    var answer = explain(probs, cfg);
    answer.note_box = box && box.map(round4); // predict_service.note_box
    return { answer: answer, probs: Array.from(probs), box: box };
  }

  U.pre = {
    coefficients: coefficients, resize: resize, reduce: reduce, resample: resample, rgbOf: rgbOf, crop: crop, affine: affine,
    toInput: toInput, pairwiseSum: pairwiseSum, strongestBlob: strongestBlob,
    boxFromHeatmap: boxFromHeatmap, expand: expand, useWhole: useWhole, locate: locate,
    roundHalfEven: roundHalfEven, cropTo: cropTo, asProbabilities: asProbabilities,
    explain: explain, recognise: recognise
  };
})(typeof window !== 'undefined' ? window : self);
