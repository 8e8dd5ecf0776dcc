/* The phone page: continuous camera scan, photo upload, and the answer given as large text,
   an ARIA live region, speech (page language) or a private vibration pattern.
   Pictures are shrunk on the phone (longest side <= 1024 px). Where the browser can run the
   model (static/js/ondevice.js), they are recognised on the phone and never sent; otherwise
   they are sent as JPEG, so a 12-megapixel photo costs tens of kilobytes, not megabytes. Both
   ways give the same answers, put through the same scan rule, and say the same words. */
(function () {
  'use strict';
  var U = window.USBills;
  var cfgEl = document.getElementById('page-config');
  if (!U || !cfgEl) return;
  var cfg = JSON.parse(cfgEl.textContent);
  var S = cfg.strings;
  // A phone held upright films 720x1280: at 512 a note across the frame kept under 288 px,
  // and small notes lose their detail first. At 1024 more frames are named right
  // (docs/model-card.md, "Frame size"; model/handheld_eval.py PAGE_SIDES[0], held equal by a
  // browser test), for up to four times the pixels to upload where the phone cannot recognise
  // notes itself.
  var MAX_SIDE = 1024;
  var QUALITY = 0.8;
  // Two frames a second, recognised on the phone or uploaded: the scan rule (the card's
  // "scan") was chosen and is measured at that rate. Frames closer together are nearly the
  // same picture, so their agreement proves less and names a wrong note more often. Tips
  // count frames (ScanLogic's defaults): after 3 s without an answer, then every 5 s.
  var INTERVAL_MS = 500;
  var MODE_KEY = 'usbills-mode';
  var AUTO_KEY = 'usbills-autostart';
  var LOCAL_KEY = 'usbills-local-only';
  var device = U.onDevice || { state: 'unavailable', load: function () { return Promise.resolve(false); } };
  var localOnly = false;
  try { localOnly = window.localStorage.getItem(LOCAL_KEY) === '1'; } catch (e) { /* private mode */ }

  function $(id) { return document.getElementById(id); }
  var answerBox = $('answer');
  var answerText = $('answer-text');
  var answerValue = $('answer-value');
  var answerHint = $('answer-hint');
  var candBox = $('candidates');
  var candList = $('candidates-list');

  /* ---------- how answers are given ---------- */
  var canVibrate = typeof navigator.vibrate === 'function';
  var mode = 'speak';
  try { mode = window.localStorage.getItem(MODE_KEY) || 'speak'; } catch (e) { /* private mode */ }
  if (['speak', 'vibrate', 'silent'].indexOf(mode) < 0) mode = 'speak';

  function setupSettings() {
    var box = $('settings');
    if (!box) return;
    box.hidden = false;
    var radios = box.querySelectorAll('input[name="mode"]');
    for (var i = 0; i < radios.length; i++) {
      radios[i].checked = radios[i].value === mode;
      radios[i].addEventListener('change', function (ev) {
        mode = ev.target.value;
        try { window.localStorage.setItem(MODE_KEY, mode); } catch (e) { /* private mode */ }
        $('vibrate-unsupported').hidden = !(mode === 'vibrate' && !canVibrate);
        setLive();
      });
    }
    $('vibrate-unsupported').hidden = !(mode === 'vibrate' && !canVibrate);
    // "On this phone only": offered where the served model can run in a browser at all.
    var local = $('local-only');
    if (local && device.config) {
      $('local-only-choice').hidden = false;
      $('local-only-help').hidden = false;
      local.checked = localOnly;
      local.addEventListener('change', function () {
        localOnly = local.checked;
        try { window.localStorage.setItem(LOCAL_KEY, localOnly ? '1' : '0'); } catch (e) { /* private */ }
      });
    }
  }

  function speaks() { return mode === 'speak' || (mode === 'vibrate' && !canVibrate); }

  /* Speech and the live region never both (a screen reader would read every answer twice):
     while the page speaks, the answer box stays visible but is not a live region. */
  function setLive() { answerBox.setAttribute('aria-live', speaks() ? 'off' : 'polite'); }

  function say(text) {
    if (!speaks() || !('speechSynthesis' in window)) return;
    window.speechSynthesis.cancel();
    var u = new window.SpeechSynthesisUtterance(text);
    u.lang = cfg.lang === 'es' ? 'es-US' : 'en-US';
    window.speechSynthesis.speak(u);
  }

  function buzz(pattern) {
    if (mode === 'vibrate' && canVibrate) navigator.vibrate(pattern);
  }

  /* ---------- the answer ---------- */
  function pct(c) { return Math.round(c * 100); }

  var shown = 0;
  function showText(text, hint, kind, repeat) {
    answerBox.classList.toggle('is-identified', kind === 'identified');
    answerBox.classList.toggle('is-unsure', kind === 'unsure' || kind === 'offline');
    var mine = ++shown;
    var put = function () {
      if (mine !== shown) return;
      answerText.textContent = text;
      answerHint.textContent = hint || '';
    };
    if (repeat && answerText.textContent === text && answerHint.textContent === (hint || '')) {
      // The same words again on purpose (asked again, or the note came back into view): empty
      // the live region first, or screen readers stay silent.
      answerText.textContent = '';
      answerHint.textContent = '';
      setTimeout(put, 150);
    } else {
      put();
    }
  }

  /* The one way anything is announced: the box, the live region, speech and vibration tell the
     same state, once per change of state; `force` announces it again on purpose (a note back
     in view, a new photo, a repeated tip, "Say it again"). */
  var told = null;
  var lastNote = null;
  function tell(m) {
    if (!m.force && m.key === told) return;
    var repeat = m.key === told;
    told = m.key;
    answerValue.textContent = m.kind === 'identified' && cfg.numeral && typeof m.value === 'number'
      ? cfg.numeral + m.value : '';
    showText(m.text, m.hint, m.kind, repeat);
    // In view at any text size (nothing happens when it already is).
    answerBox.scrollIntoView({ block: 'nearest' });
    say(U.joinSentences(m.text, m.hint || ''));
    if (m.vibration) buzz(m.vibration);
    if (m.kind === 'identified') lastNote = m;
  }

  /* What an answer says: the note, or (not identified) only candidates that are likely, else
     "No banknote found"; plus the tip, if any. */
  function messageOf(ans, hintKey) {
    var hint = !ans.identified && hintKey ? S['hint_' + hintKey] : '';
    var likely = U.likelyCandidates(ans);
    var text = ans.identified ? ans.message
      : likely.length > 1 ? S.may_be_two.replace('{a}', likely[0].display_name)
        .replace('{b}', likely[1].display_name)
        : likely.length ? S.may_be.replace('{name}', likely[0].display_name) : S.no_note;
    return {
      key: ans.identified ? 'note:' + ans.label : 'tip:' + text + hint, text: text, hint: hint,
      kind: ans.identified ? 'identified' : 'unsure', vibration: U.vibrationFor(ans, cfg.values),
      value: ans.value
    };
  }

  function showCandidates(ans) {
    candList.textContent = '';
    var likely = U.likelyCandidates(ans);
    var show = likely.length > 0;
    if (show) {
      likely.slice(0, 2).forEach(function (c) {
        var li = document.createElement('li');
        li.textContent = S.confidence.replace('{name}', c.display_name).replace('{pct}', pct(c.confidence));
        candList.appendChild(li);
      });
    }
    candBox.hidden = !show;
  }

  /* Announce one API answer (each call is a decision to announce: force); hintKey adds a tip
     when nothing was identified. */
  function announce(ans, hintKey) {
    showCandidates(ans);
    var m = messageOf(ans, hintKey);
    m.force = true;
    tell(m);
  }

  function showError(text, once) {
    showCandidates(null);
    tell({ key: 'error:' + text, text: text, kind: 'unsure', force: !once });
  }

  /* ---------- images ---------- */
  var work = document.createElement('canvas');
  var tiny = document.createElement('canvas');
  tiny.width = 32;
  tiny.height = 24;

  /* Draw source (video, bitmap, img) so its longest side is <= maxSide, halving first so a
     12 MP photo is averaged rather than point-sampled. */
  function downscale(source, sw, sh, maxSide) {
    var scale = Math.min(1, maxSide / Math.max(sw, sh));
    var w = Math.max(1, Math.round(sw * scale));
    var h = Math.max(1, Math.round(sh * scale));
    var src = source, cw = sw, ch = sh;
    while (cw / 2 >= w * 2) {
      var half = document.createElement('canvas');
      half.width = Math.round(cw / 2);
      half.height = Math.round(ch / 2);
      var hc = half.getContext('2d');
      hc.imageSmoothingQuality = 'high';
      hc.drawImage(src, 0, 0, half.width, half.height);
      src = half; cw = half.width; ch = half.height;
    }
    work.width = w;
    work.height = h;
    var ctx = work.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(src, 0, 0, w, h);
    return work;
  }

  function toJpeg(canvas) {
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (b) {
        if (b) resolve(b); else reject(new Error('JPEG encoding failed'));
      }, 'image/jpeg', QUALITY);
    });
  }

  function signatureOf(source) {
    var ctx = tiny.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(source, 0, 0, tiny.width, tiny.height);
    return U.signature(ctx.getImageData(0, 0, tiny.width, tiny.height));
  }

  /* ---------- the API ---------- */
  function ApiFailure(status, message) { this.status = status; this.message = message; }

  function onPhone() { return device.state === 'ready'; }

  /* The answer for a picture on a canvas: on the phone when it can, else from the server
     (never, when this phone was told to keep its pictures). */
  async function identifyCanvas(canvas) {
    if (onPhone()) {
      try {
        return await device.recognise(canvas);
      } catch (e) {
        // A frame the phone could not do (it never should): the server's answer, unless
        // this phone keeps its pictures.
        if (localOnly) throw new ApiFailure(-1, S.local_unavailable);
      }
    }
    if (localOnly && device.config) throw new ApiFailure(-1, S.local_unavailable);
    return identify(await toJpeg(canvas));
  }

  async function identify(blob) {
    var resp;
    try {
      resp = await fetch(cfg.api + '?lang=' + encodeURIComponent(cfg.lang), {
        method: 'POST',
        headers: { 'Content-Type': blob.type || 'image/jpeg', 'Accept': 'application/json' },
        body: blob,
        credentials: 'same-origin'
      });
    } catch (e) {
      throw new ApiFailure(0, S.error_network);
    }
    var body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok || !body || body.error) {
      var msg = body && body.error && body.error.message;
      if (resp.status === 429 || resp.status === 503) throw new ApiFailure(resp.status, S.error_busy);
      throw new ApiFailure(resp.status, S.error_generic.replace('{message}', msg || resp.status));
    }
    return body;
  }

  /* ---------- photo mode ---------- */
  var photoInput = $('photo-input');
  var photoForm = $('photo-form');
  var preview = $('photo-preview');
  var previewUrl = null;

  /* Decoded picture, upright per its EXIF orientation; <img> where createImageBitmap is
     missing or refuses the options (older Safari). */
  function decode(file) {
    return Promise.resolve()
      .then(function () {
        return window.createImageBitmap(file, { imageOrientation: 'from-image' });
      })
      .then(function (b) { return { src: b, w: b.width, h: b.height }; })
      .catch(function () { return decodeWithImg(file); });
  }

  function decodeWithImg(file) {
    return new Promise(function (resolve, reject) {
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () {
        URL.revokeObjectURL(url); // the decoded picture stays usable
        resolve({ src: img, w: img.naturalWidth, h: img.naturalHeight });
      };
      img.onerror = function () { URL.revokeObjectURL(url); reject(new Error('undecodable')); };
      img.src = url;
    });
  }

  async function identifyFile(file) {
    if (!file) return;
    if (file.type && file.type.indexOf('image/') !== 0) { showError(S.photo_not_image); return; }
    showCandidates(null);
    showText(S.working, '', null);
    var blob, sig = null, canvas = null;
    try {
      var img = await decode(file);
      canvas = downscale(img.src, img.w, img.h, MAX_SIDE);
      if (img.src.close) img.src.close(); // a 12 MP bitmap holds about 48 MB
      sig = signatureOf(canvas);
      blob = await toJpeg(canvas);
    } catch (e) {
      // This browser cannot decode it (e.g. HEIC outside Safari): the server can, send as is.
      blob = file;
      canvas = null;
    }
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    preview.src = previewUrl;
    preview.hidden = false;
    try {
      var ans = canvas ? await identifyCanvas(canvas)
        : localOnly && device.config ? null : await identify(blob);
      if (!ans) throw new ApiFailure(-1, S.local_unavailable);
      var hint = sig ? U.pickHint({ brightness: U.brightness(sig), motion: 0, answer: ans }) : 'more';
      announce(ans, hint);
    } catch (e) {
      showError(e instanceof ApiFailure ? e.message : S.error_generic.replace('{message}', String(e)));
    }
    // The answer, not the file input, is where the person is now (tell() scrolled it into view).
    answerBox.focus();
  }

  function setupPhoto() {
    if (!photoForm) return;
    photoInput.addEventListener('change', function () { identifyFile(photoInput.files[0]); });
    photoForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (photoInput.files[0]) identifyFile(photoInput.files[0]);
      else photoInput.focus();
    });
    photoForm.addEventListener('dragover', function (ev) {
      ev.preventDefault();
      photoForm.classList.add('is-over');
    });
    photoForm.addEventListener('dragleave', function () { photoForm.classList.remove('is-over'); });
    photoForm.addEventListener('drop', function (ev) {
      ev.preventDefault();
      photoForm.classList.remove('is-over');
      var files = ev.dataTransfer && ev.dataTransfer.files;
      if (files && files.length) identifyFile(files[0]);
    });
  }

  /* ---------- scan mode ---------- */
  var scanBox = $('scan');
  var toggle = $('scan-toggle');
  var again = $('scan-again');
  var statusEl = $('scan-status');
  var video = $('scan-video');
  var torch = $('scan-torch');
  var state = 'off'; // off | starting | scanning | paused
  var stream = null;
  var logic = null;
  var timer = null;
  var run = 0; // bumped by every start and stop: a late answer from an old run is dropped
  var troubled = false; // the last request failed for want of a connection or capacity

  function setState(next) {
    state = next;
    toggle.textContent = next === 'off' ? S.scan_start : S.scan_stop;
    again.hidden = next !== 'paused';
    statusEl.textContent = {
      off: S.status_off, starting: S.status_starting,
      scanning: S.status_scanning, paused: S.status_paused
    }[next];
    video.hidden = next === 'off';
    if (next === 'off') { torch.hidden = true; torch.setAttribute('aria-pressed', 'false'); }
  }

  /* A light for dim rooms, where the camera has one (most phones' rear cameras). */
  function offerTorch() {
    var track = stream && stream.getVideoTracks()[0];
    var caps = track && track.getCapabilities ? track.getCapabilities() : {};
    torch.hidden = !caps.torch;
  }

  function toggleTorch() {
    var track = stream && stream.getVideoTracks()[0];
    if (!track) return;
    var on = torch.getAttribute('aria-pressed') !== 'true';
    track.applyConstraints({ advanced: [{ torch: on }] }).then(function () {
      torch.setAttribute('aria-pressed', on ? 'true' : 'false');
    }, function () { torch.hidden = true; });
  }

  function cameraError(e) {
    var name = e && e.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') return S.camera_denied;
    if (name === 'NotFoundError' || name === 'OverconstrainedError') return S.camera_missing;
    return S.camera_error;
  }

  async function startScan() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError(window.isSecureContext ? S.camera_missing : S.camera_insecure);
      return;
    }
    run += 1;
    troubled = false;
    setState('starting');
    // The control and the answer under it fill the screen while scanning, even at 200 % text.
    scanBox.scrollIntoView({ block: 'start' });
    // A start cue in every mode. Speaking inside the tap also unlocks speech on iOS.
    tell({ key: 'start', text: S.spoken_start, kind: null, vibration: U.CUE, force: true });
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } }
      });
    } catch (e) {
      setState('off');
      showError(cameraError(e));
      return;
    }
    if (state !== 'starting') { stopTracks(); return; } // stopped while asking
    video.srcObject = stream;
    try { await video.play(); } catch (e) { /* autoplay of a muted stream is allowed */ }
    logic = new U.ScanLogic({ rule: cfg.scan });
    setState('scanning');
    offerTorch();
    schedule(0);
  }

  function stopTracks() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
  }

  function stopScan() {
    run += 1;
    clearTimeout(timer);
    timer = null;
    stopTracks();
    video.srcObject = null;
    setState('off');
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(tick, delay);
  }

  async function tick() {
    if (state !== 'scanning' && state !== 'paused') return;
    var mine = run;
    var started = Date.now();
    var delay = INTERVAL_MS;
    try {
      await step(mine);
    } catch (e) {
      if (mine !== run) return;
      var msg = e instanceof ApiFailure ? e.message : S.error_generic.replace('{message}', String(e));
      if (e instanceof ApiFailure && (e.status === 429 || e.status === 503 || e.status === 0)) {
        delay = 2000; // back off; the next good frame says "connected again"
        var text = e.status === 0 ? S.offline : S.error_busy;
        statusEl.textContent = text;
        troubled = true;
        showCandidates(null);
        tell({ key: 'offline:' + e.status, text: text, kind: 'offline', vibration: U.OFFLINE });
      } else {
        showError(msg, true); // once, not on every frame
      }
    }
    if (mine === run && (state === 'scanning' || state === 'paused')) {
      schedule(Math.max(0, delay - (Date.now() - started)));
    }
  }

  async function step(mine) {
    if (!video.videoWidth) return;
    var sig = signatureOf(video);
    var act = logic.frame(sig);
    if (act === 'skip') return;
    if (act === 'resume') setState('scanning');
    var ans = await identifyCanvas(downscale(video, video.videoWidth, video.videoHeight, MAX_SIDE));
    if (mine !== run || state !== 'scanning') return; // stopped while waiting
    if (statusEl.textContent !== S.status_scanning) statusEl.textContent = S.status_scanning;
    if (troubled) {
      troubled = false;
      tell({ key: 'online', text: S.online, kind: null, vibration: U.CUE });
    }
    var out = logic.answer(ans, sig);
    if (!out) return;
    announce(out.answer, out.hint);
    if (out.kind === 'identified') setState('paused');
  }

  function setupScan() {
    if (!scanBox) return;
    scanBox.classList.remove('is-waiting');
    toggle.addEventListener('click', function () {
      if (state === 'off') startScan(); else stopScan();
    });
    torch.addEventListener('click', toggleTorch);
    // "Say it again": the last note, on every channel, on request.
    again.addEventListener('click', function () {
      if (lastNote) tell(Object.assign({}, lastNote, { force: true }));
    });
    // Give the camera back when the page is hidden (locked phone, other app).
    document.addEventListener('visibilitychange', function () {
      if (document.hidden && state !== 'off') stopScan();
    });
    // Straight into scanning, as EyeNote and Seeing AI open, when this device asked for it.
    var auto = $('autostart');
    if (auto) {
      try { auto.checked = window.localStorage.getItem(AUTO_KEY) === '1'; } catch (e) { /* private */ }
      auto.addEventListener('change', function () {
        try { window.localStorage.setItem(AUTO_KEY, auto.checked ? '1' : '0'); } catch (e) { /* private */ }
      });
      if (auto.checked && !document.hidden) startScan();
    }
  }

  /* ---------- on the phone, and offline ---------- */
  /* The service worker keeps the page, the runtime and the bundle for offline use; it is
     registered once the runtime has loaded (or failed), so its downloads come from the
     browser's cache instead of competing with the page's. */
  function setupOffline() {
    device.load().then(function () {
      if (!('serviceWorker' in navigator) || !cfg.sw) return null;
      return navigator.serviceWorker.register(cfg.sw).then(function () {
        return navigator.serviceWorker.ready;
      }).then(keepForOffline);
    }).catch(function () { /* no offline use; the page works as before */ });
  }

  /* Ask the service worker to keep this page (in its language) and the runtime files this
     browser actually loaded (LiteRT.js picks one of its Wasm builds by the browser's features). */
  function keepForOffline(reg) {
    var urls = [window.location.href];
    if (device.config) {
      var prefix = new URL(device.config.runtime, window.location.href).pathname;
      (device.loadedUrls || []).forEach(function (name) {
        var u = new URL(name, window.location.href);
        if (u.origin === window.location.origin && u.pathname.indexOf(prefix) === 0) urls.push(u.href);
      });
    }
    if (reg && reg.active) reg.active.postMessage({ type: 'keep', urls: urls });
  }

  setupSettings();
  setLive();
  setupPhoto();
  setupScan();
  setupOffline();
})();
