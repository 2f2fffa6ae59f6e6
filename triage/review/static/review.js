// Keyboard-first review.  No inline script (the page's CSP forbids it); all data comes from the DOM.
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");

  function typingIn(el) {
    if (!el) return false;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || el.isContentEditable) return true;
    if (tag === "SELECT") return true;
    if (tag === "INPUT") return ["checkbox", "radio", "submit", "button", "hidden"].indexOf(el.type) < 0;
    return false;
  }
  function go(id) {
    var a = document.getElementById(id);
    if (a) { window.location.href = a.href; return true; }
    return false;
  }
  function click(id) {
    var b = document.getElementById(id);
    if (b) { b.click(); return true; }
    return false;
  }

  // ---- auto-advance preference ------------------------------------------------------
  var auto = document.getElementById("auto-advance");
  function syncAdvance() {
    var on = !auto || auto.checked;
    var flags = document.querySelectorAll(".advance-flag");
    for (var i = 0; i < flags.length; i++) flags[i].value = on ? "1" : "0";
  }
  if (auto) {
    try { auto.checked = window.localStorage.getItem("triage.autoAdvance") !== "0"; } catch (e) {}
    auto.addEventListener("change", function () {
      try { window.localStorage.setItem("triage.autoAdvance", auto.checked ? "1" : "0"); } catch (e) {}
      syncAdvance();
    });
    syncAdvance();
  }

  // ---- queue: row cursor ------------------------------------------------------------
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.qrow"));
  var cursor = rows.length ? 0 : -1;
  function mark() {
    rows.forEach(function (r, i) { r.classList.toggle("cursor", i === cursor); });
    if (cursor >= 0) rows[cursor].scrollIntoView({ block: "nearest" });
  }
  if (page === "queue") {
    mark();
    rows.forEach(function (r, i) {
      r.addEventListener("click", function (ev) {
        if (ev.target.tagName !== "A") window.location.href = r.getAttribute("data-href");
      });
    });
  }

  // ---- selects: Enter submits the correction ----------------------------------------
  var selects = document.querySelectorAll(".correct-form select");
  for (var i = 0; i < selects.length; i++) {
    selects[i].addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        ev.stopPropagation();
        var f = this.form;
        if (f.requestSubmit) f.requestSubmit(); else f.submit();
      }
    });
  }
  var note = document.getElementById("note");
  if (note) {
    note.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        var f = this.form;
        if (f.requestSubmit) f.requestSubmit(); else f.submit();
      }
    });
  }

  var headKeys = { t: "select-track", g: "select-route", d: "select-department", r: "select-risk" };

  document.addEventListener("keydown", function (ev) {
    var el = document.activeElement;
    if (ev.key === "Escape") { if (el && el.blur) el.blur(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typingIn(el)) return;
    var k = ev.key;
    var done = false;
    if (page === "queue") {
      if (k === "j" || k === "ArrowDown") { if (cursor < rows.length - 1) cursor++; mark(); done = true; }
      else if (k === "k" || k === "ArrowUp") { if (cursor > 0) cursor--; mark(); done = true; }
      else if ((k === "Enter" || k === "o") && cursor >= 0) {
        if (!(el && (el.tagName === "A" || el.tagName === "BUTTON"))) {
          window.location.href = rows[cursor].getAttribute("data-href"); done = true;
        }
      }
      else if (k === "]") done = go("page-next");
      else if (k === "[") done = go("page-prev");
      else if (k === "/") { var s = document.querySelector("#filters select, #filters input"); if (s) { s.focus(); done = true; } }
    } else if (page === "letter") {
      if (k === "j" || k === "ArrowRight") done = go("next-link");
      else if (k === "k" || k === "ArrowLeft") done = go("prev-link");
      else if (k === "q") done = go("queue-link");
      else if (k === "a") done = click("accept-all");
      else if (k === "1" || k === "2" || k === "3") done = click("alt-" + k);
      else if (k === "n") { if (note) { note.focus(); done = true; } }
      else if (headKeys[k]) { var sel = document.getElementById(headKeys[k]); if (sel) { sel.focus(); done = true; } }
    }
    if (done) ev.preventDefault();
  });
})();
