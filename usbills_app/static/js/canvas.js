// Drawing canvas for digit sites: white strokes on black (like the training data), sent to the
// API as a PNG; the answer's message is shown in a live region (screen readers announce it).
(function () {
  "use strict";
  var section = document.getElementById("draw");
  var canvas = document.getElementById("draw-canvas");
  if (!section || !canvas || !canvas.getContext) return;
  var config = JSON.parse(document.getElementById("page-config").textContent);
  var result = document.getElementById("draw-result");
  var ctx = canvas.getContext("2d");
  var drawing = false, drawn = false;

  function clear() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
    result.textContent = "";
  }

  function point(ev) {
    var r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * canvas.width / r.width,
            (ev.clientY - r.top) * canvas.height / r.height];
  }

  canvas.addEventListener("pointerdown", function (ev) {
    drawing = true;
    canvas.setPointerCapture(ev.pointerId);
    var p = point(ev);
    ctx.beginPath();
    ctx.moveTo(p[0], p[1]);
    ev.preventDefault();
  });
  canvas.addEventListener("pointermove", function (ev) {
    if (!drawing) return;
    var p = point(ev);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    drawn = true;
  });
  ["pointerup", "pointercancel"].forEach(function (type) {
    canvas.addEventListener(type, function () { drawing = false; });
  });

  document.getElementById("draw-clear").addEventListener("click", clear);
  document.getElementById("draw-read").addEventListener("click", function () {
    if (!drawn) { result.textContent = result.getAttribute("data-empty"); return; }
    canvas.toBlob(function (blob) {
      fetch(config.api + "?lang=" + encodeURIComponent(config.lang), {
        method: "POST", headers: {"Content-Type": "image/png"}, body: blob
      }).then(function (r) { return r.json(); }).then(function (body) {
        result.textContent = body.error ? body.error.message : body.message;
      }).catch(function (e) { result.textContent = String(e); });
    }, "image/png");
  });

  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 28;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  clear();
  section.hidden = false;
})();
