/* Pure helpers of the phone page (no DOM, no network): vibration patterns, scan agreement,
   view-change detection and the choice of hint. Kept apart so the browser tests can call them
   directly with known inputs (window.USBills). Plain ES2017, no build step, no dependencies. */
(function (root) {
  'use strict';

  var PULSE_MS = 180;
  var GAP_MS = 170;
  // "Not identified": two long buzzes, unlike any denomination (those are short pulses).
  var NOT_IDENTIFIED = [700, 250, 700];

  /* The n-th denomination (1-based) of the card's values in ascending order: $1 -> 1 ... $100 -> 7. */
  function pulsesFor(value, values) {
    var i = values.indexOf(value);
    return i < 0 ? 0 : i + 1;
  }

  function pulsePattern(n) {
    var p = [];
    for (var i = 0; i < n; i++) {
      if (i) p.push(GAP_MS);
      p.push(PULSE_MS);
    }
    return p;
  }

  function vibrationFor(answer, values) {
    if (answer && answer.identified) {
      var n = pulsesFor(answer.value, values);
      if (n > 0) return pulsePattern(n);
    }
    return NOT_IDENTIFIED.slice();
  }

  /* The label the last `need` answers agree on (all identified, same label), else null. */
  function agreedLabel(history, need) {
    if (history.length < need) return null;
    var last = history.slice(-need);
    var label = last[0].identified ? last[0].label : null;
    if (!label) return null;
    for (var i = 1; i < last.length; i++) {
      if (!last[i].identified || last[i].label !== label) return null;
    }
    return label;
  }

  /* Grey levels (0-255) of a small RGBA ImageData-like {data, width, height}. */
  function signature(img) {
    var d = img.data;
    var out = new Array(img.width * img.height);
    for (var i = 0, j = 0; j < out.length; i += 4, j++) {
      out[j] = Math.round(0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]);
    }
    return out;
  }

  function brightness(sig) {
    var s = 0;
    for (var i = 0; i < sig.length; i++) s += sig[i];
    return sig.length ? s / sig.length : 0;
  }

  /* Mean absolute difference of two signatures (255 when they cannot be compared). */
  function difference(a, b) {
    if (!a || !b || a.length !== b.length || !a.length) return 255;
    var s = 0;
    for (var i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
    return s / a.length;
  }

  var CHANGE_LEVEL = 18; // grey levels: a different bill or a moved camera, not sensor noise
  function viewChanged(a, b) {
    return difference(a, b) > CHANGE_LEVEL;
  }

  /* Which tip helps most: too dark -> more light; moving between frames -> hold steadier;
     otherwise the note is probably too small, folded or cut off. */
  function pickHint(stats) {
    if (stats.brightness < 60) return 'light';
    if (stats.motion > 12) return 'steady';
    return 'more';
  }

  /* Continuous scan: announce when `need` consecutive frames agree, then pause until the view
     changes (two frames in a row unlike the announced one) or resume() is called. A tip is
     given after `hintAfter` frames without an answer, then every `hintEvery` frames. */
  function ScanLogic(opts) {
    opts = opts || {};
    this.need = opts.need || 2;
    this.hintAfter = opts.hintAfter || 6;
    this.hintEvery = opts.hintEvery || 10;
    this.resume();
    this.lastSig = null;
    this.motion = 0;
  }

  ScanLogic.prototype.resume = function () {
    this.paused = false;
    this.pausedSig = null;
    this.changed = 0;
    this.history = [];
    this.misses = 0;
  };

  /* Called for every sampled frame; returns 'send' (upload it), 'skip' (paused, same view)
     or 'resume' (paused, but the view changed: upload it). */
  ScanLogic.prototype.frame = function (sig) {
    this.motion = this.lastSig ? difference(this.lastSig, sig) : 0;
    this.lastSig = sig;
    if (!this.paused) return 'send';
    if (viewChanged(this.pausedSig, sig)) {
      this.changed += 1;
      if (this.changed >= 2) {
        this.resume();
        return 'resume';
      }
    } else {
      this.changed = 0;
    }
    return 'skip';
  };

  /* Called with the API's answer for a sent frame; returns what to announce, or null. */
  ScanLogic.prototype.answer = function (ans, sig) {
    if (this.paused) return null;
    this.history.push(ans);
    if (this.history.length > 8) this.history.shift();
    if (ans.identified) {
      this.misses = 0;
      if (agreedLabel(this.history, this.need)) {
        this.paused = true;
        this.pausedSig = sig;
        this.changed = 0;
        this.history = [];
        return { kind: 'identified', answer: ans, hint: null };
      }
      return null;
    }
    this.misses += 1;
    if (this.misses >= this.hintAfter) {
      this.misses = this.hintAfter - this.hintEvery;
      return {
        kind: 'hint', answer: ans,
        hint: pickHint({ brightness: brightness(sig || []), motion: this.motion })
      };
    }
    return null;
  };

  /* "Twenty dollars" + "Try more light." -> "Twenty dollars. Try more light." */
  function joinSentences(a, b) {
    if (!b) return a;
    if (!a) return b;
    return (/[.!?…]$/.test(a) ? a : a + '.') + ' ' + b;
  }

  root.USBills = {
    PULSE_MS: PULSE_MS, GAP_MS: GAP_MS, NOT_IDENTIFIED: NOT_IDENTIFIED,
    pulsesFor: pulsesFor, pulsePattern: pulsePattern, vibrationFor: vibrationFor,
    agreedLabel: agreedLabel, signature: signature, brightness: brightness,
    difference: difference, viewChanged: viewChanged, pickHint: pickHint,
    ScanLogic: ScanLogic, joinSentences: joinSentences
  };
})(window);
