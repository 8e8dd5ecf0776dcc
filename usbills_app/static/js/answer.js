/* Pure helpers of the phone page (no DOM, no network): vibration patterns, scan agreement,
   view-change detection and the choice of hint. Kept apart so the browser tests can call them
   directly with known inputs (window.USBills). Plain ES2017, no build step, no dependencies. */
(function (root) {
  'use strict';

  var PULSE_MS = 180;
  var GAP_MS = 170;
  // "Not identified": two long buzzes, unlike any denomination (those are short pulses).
  var NOT_IDENTIFIED = [700, 250, 700];
  // Scanning (started, or connected again): one buzz much shorter than a denomination pulse.
  var CUE = [60];
  // No connection: one long buzz.
  var OFFLINE = [1500];
  // A candidate is named only when it is this likely (a 45/45 split between two notes names
  // both; 10 % each, as for a painting or a far note, names none). The API's message uses the
  // same share (LIKELY in predict_service.py).
  var LIKELY = 0.3;

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

  /* The scan-level decision, the same rule as the server's (usbills_app/scan.py): a note is
     identified once `rule.frames` votes among the last `rule.frames + rule.unsure` name it,
     with no other note named after the first of them and no pause over `rule.max_gap_s`
     seconds, and announced once per time it comes into view. A vote is the label of an
     identified frame at `rule.threshold` or more (voteOf), or null. `state` (from
     newScanState) is changed in place. */
  var DEFAULT_RULE = { frames: 3, max_gap_s: 2.0, unsure: 0, threshold: 0 };

  function voteOf(ans, rule) {
    return ans.identified && (!rule.threshold || ans.confidence >= rule.threshold) ? ans.label : null;
  }

  function newScanState() {
    return { recent: [], t: null, announced: null, absent: 0 };
  }

  function scanStep(state, vote, t, rule) {
    if (state.t !== null && (t - state.t > rule.max_gap_s || t < state.t)) {
      state.recent = []; state.announced = null; state.absent = 0;
    }
    state.t = t;
    state.recent = state.recent.concat([vote]).slice(-(rule.frames + (rule.unsure || 0)));
    var named = state.recent.filter(function (v) { return v !== null; });
    var label = named.length ? named[named.length - 1] : null;
    var run = 0;
    for (var i = named.length - 1; i >= 0 && named[i] === label; i--) run += 1;
    if (state.announced !== null) {
      state.absent = vote === state.announced ? 0 : state.absent + 1;
      if (state.absent >= rule.frames) { state.announced = null; state.absent = 0; }
    }
    var identified = label !== null && run >= rule.frames;
    var announce = identified && label !== state.announced;
    if (announce) { state.announced = label; state.absent = 0; }
    return {
      status: identified ? 'identified' : 'searching',
      label: identified ? label : null,
      agreeing: run,
      announce: announce
    };
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

  /* What a not-identified answer may say: the candidates that are actually likely (none: "no
     banknote found"). */
  function likelyCandidates(answer) {
    if (!answer || answer.identified || answer.no_object) return [];
    return (answer.candidates || []).filter(function (c) { return c.confidence >= LIKELY; });
  }

  /* A located note (the answer's note_box, margin included) narrower than this share of the
     frame is too small to name reliably: the hand-held evaluation reports such frames as a
     condition (model/handheld_eval.py, the same CLOSER_BELOW; figures in docs/benchmarks.md). */
  var CLOSER_BELOW = 0.4;

  /* Which tip helps most: too dark -> more light; moving between frames -> hold steadier;
     a small note found -> come closer; otherwise the note is probably folded or cut off.
     stats: {brightness, motion, answer: the frame's answer, for its note_box}. */
  function pickHint(stats) {
    if (stats.brightness < 60) return 'light';
    if (stats.motion > 12) return 'steady';
    var ans = stats.answer, box = ans && !ans.no_object ? ans.note_box : null;
    if (box && box[2] - box[0] < CLOSER_BELOW) return 'closer';
    return 'more';
  }

  /* Continuous scan: announce when the scan rule (scanStep, the bundle's `rule`) identifies a
     note, then pause uploads until the view changes (two frames in a row unlike the announced
     one). The rule's state lives on through pauses: a paused, unchanged view counts as the
     announced note, so the same note still in view after the hand moves is not announced
     again; it is again once it has been away for `rule.frames` frames (or the scan stopped).
     A tip is given after `hintAfter` frames without an answer, then every `hintEvery`. */
  function ScanLogic(opts) {
    opts = opts || {};
    this.rule = opts.rule || DEFAULT_RULE;
    this.hintAfter = opts.hintAfter || 6;
    this.hintEvery = opts.hintEvery || 10;
    this.resume();
    this.lastSig = null;
    this.motion = 0;
  }

  /* A fresh scan: nothing seen, nothing announced. */
  ScanLogic.prototype.resume = function () {
    this.scan = newScanState();
    this.unpause();
  };

  ScanLogic.prototype.unpause = function () {
    this.paused = false;
    this.pausedSig = null;
    this.changed = 0;
    this.misses = 0;
  };

  ScanLogic.prototype.pause = function (sig) {
    this.paused = true;
    this.pausedSig = sig;
    this.changed = 0;
  };

  /* Called for every sampled frame (at time t, seconds; default now); returns 'send' (upload
     it), 'skip' (paused, same view) or 'resume' (paused, but the view changed: upload it). */
  ScanLogic.prototype.frame = function (sig, t) {
    this.motion = this.lastSig ? difference(this.lastSig, sig) : 0;
    this.lastSig = sig;
    if (!this.paused) return 'send';
    if (viewChanged(this.pausedSig, sig)) {
      this.changed += 1;
      if (this.changed >= 2) {
        this.unpause();
        return 'resume';
      }
      return 'skip';
    }
    this.changed = 0;
    var when = typeof t === 'number' ? t : Date.now() / 1000;
    scanStep(this.scan, this.scan.announced, when, this.rule);
    return 'skip';
  };

  /* Called with the API's answer for a sent frame (at time t, seconds; default now); returns
     what to announce, or null. */
  ScanLogic.prototype.answer = function (ans, sig, t) {
    if (this.paused) return null;
    var when = typeof t === 'number' ? t : Date.now() / 1000;
    var d = scanStep(this.scan, voteOf(ans, this.rule), when, this.rule);
    if (ans.identified) {
      this.misses = 0;
      if (d.announce) {
        this.pause(sig);
        return { kind: 'identified', answer: ans, hint: null };
      }
      // Still the announced note (the hand moved): quiet, and no uploads until the view changes.
      if (d.status === 'identified' && d.label === this.scan.announced) this.pause(sig);
      return null;
    }
    this.misses += 1;
    if (this.misses >= this.hintAfter) {
      this.misses = this.hintAfter - this.hintEvery;
      return {
        kind: 'hint', answer: ans,
        hint: pickHint({ brightness: brightness(sig || []), motion: this.motion, answer: ans })
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
    PULSE_MS: PULSE_MS, GAP_MS: GAP_MS, NOT_IDENTIFIED: NOT_IDENTIFIED, CUE: CUE,
    OFFLINE: OFFLINE, LIKELY: LIKELY, likelyCandidates: likelyCandidates,
    pulsesFor: pulsesFor, pulsePattern: pulsePattern, vibrationFor: vibrationFor,
    DEFAULT_RULE: DEFAULT_RULE, CLOSER_BELOW: CLOSER_BELOW, newScanState: newScanState,
    voteOf: voteOf,
    scanStep: scanStep,
    signature: signature, brightness: brightness,
    difference: difference, viewChanged: viewChanged, pickHint: pickHint,
    ScanLogic: ScanLogic, joinSentences: joinSentences
  };
})(window);
