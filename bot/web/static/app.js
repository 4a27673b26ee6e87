// captionbot's public page, progressively enhanced: the forms work without this file.
// With it, a photo is sent without leaving the page, the wait is shown (and announced) where the
// photo was chosen, and the answer page opens when the description is ready. Photos can also be
// dropped on the form or pasted. No libraries; the page's CSP allows only this origin's scripts.
(function () {
  "use strict";

  var ANNOUNCE_KEY = "captionbot-announce";
  var token = (document.querySelector("input[name=csrf_token]") || {}).value || "";
  // What to say when the server can't be reached (the page's own words, from data-failed).
  var failed = (document.querySelector("[data-failed]") || { dataset: {} }).dataset.failed || "";

  function remember(id) {
    try { sessionStorage.setItem(ANNOUNCE_KEY, id); } catch (e) { /* storage off: no focus move */ }
  }

  function recalled() {
    try {
      var id = sessionStorage.getItem(ANNOUNCE_KEY);
      sessionStorage.removeItem(ANNOUNCE_KEY);
      return id;
    } catch (e) {
      return null;
    }
  }

  function say(box, text, busy) {
    // Replace the status box's content: an optional spinner and one line of text (unchanged text is
    // left alone, so that a screen reader does not repeat it on every poll).
    var said = (busy ? "1" : "0") + (text || "");
    if (box.dataset.said === said) return;
    box.dataset.said = said;
    box.textContent = "";
    if (busy) {
      var spin = document.createElement("span");
      spin.className = "spinner";
      spin.setAttribute("aria-hidden", "true");
      box.appendChild(spin);
    }
    if (text) {
      var line = document.createElement("span");
      line.textContent = text;
      box.appendChild(line);
    }
  }

  function alertBox(text) {
    var holder = document.getElementById("upload-alert");
    if (!holder) return;
    holder.textContent = "";
    if (!text) return;
    var p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    holder.appendChild(p);
  }

  function getJSON(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = options.headers || {};
    options.headers.Accept = "application/json";
    return fetch(url, options).catch(function () {
      throw new Error(failed);
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          throw new Error(body.error || failed);
        }
        return body;
      });
    });
  }

  // Long-poll the request until it is finished; the server holds each call up to 20 s.
  function waitForAnswer(id, onStatus) {
    return getJSON("/api/r/" + encodeURIComponent(id) + "?wait=20").then(function (view) {
      if (view.finished) return view;
      if (view.status_text) onStatus(view.status_text);
      return waitForAnswer(id, onStatus);
    });
  }

  function setUpUpload(form) {
    var input = form.querySelector("input[type=file]");
    var button = form.querySelector("button[type=submit]");
    var status = document.getElementById("upload-status");
    var zone = document.getElementById("dropzone");
    var hint = document.getElementById("drop-hint");
    var sending = false;
    if (hint) hint.hidden = false;

    function send() {
      if (sending) return;
      if (!input.files || !input.files.length) {
        alertBox(form.dataset.noFile);
        input.focus();
        return;
      }
      sending = true;
      button.disabled = true;
      alertBox("");
      say(status, form.dataset.uploading, true);
      getJSON("/api/caption", { method: "POST", body: new FormData(form), headers: { "X-CSRF-Token": token } })
        .then(function (taken) {
          say(status, taken.status_text, true);
          var open = function () {
            remember(taken.request_id);
            window.location.assign(taken.url);
          };
          // The photo is taken: if waiting here fails, its own page (which refreshes itself) waits.
          return waitForAnswer(taken.request_id, function (line) { say(status, line, true); }).then(function () {
            say(status, form.dataset.finished, false);
            open();
          }, open);
        })
        .catch(function (error) {
          sending = false;
          button.disabled = false;
          say(status, "", false);
          alertBox(error.message);
          // A fresh upload key, so that a retry is a new photo rather than the refused one.
          var key = form.querySelector("input[name=upload_key]");
          if (key && window.crypto && crypto.getRandomValues) {
            var bytes = new Uint8Array(18);
            crypto.getRandomValues(bytes);
            key.value = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
          }
        });
    }

    function useFile(file) {
      if (!file || !/^image\//.test(file.type || "")) return false;
      var transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
      send();
      return true;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send();
    });
    if (zone) {
      zone.addEventListener("dragover", function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
      zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        zone.classList.remove("over");
        var files = event.dataTransfer && event.dataTransfer.files;
        if (files && files.length && !useFile(files[0])) alertBox(form.dataset.noFile);
      });
    }
    document.addEventListener("paste", function (event) {
      var files = event.clipboardData && event.clipboardData.files;
      if (files && files.length && useFile(files[0])) event.preventDefault();
    });
  }

  // The answer page while waiting: long-poll instead of the no-JS refresh, then reload once.
  function setUpWaiting(box) {
    var text = document.getElementById("waiting-text");
    waitForAnswer(box.dataset.request, function (line) {
      if (text && text.textContent !== line) text.textContent = line;
    }).then(function () {
      remember(box.dataset.request);
      window.location.reload();
    }, function (error) {
      if (text) text.textContent = error.message;
      window.setTimeout(function () { window.location.reload(); }, 5000);  // try again, as without JS
    });
  }

  // Coming from an upload: move focus to the description so that it is read out at once.
  function announce() {
    var caption = document.getElementById("caption");
    var id = caption ? recalled() : null;
    if (id && window.location.pathname === "/r/" + id) caption.focus();
  }

  var form = document.getElementById("upload");
  if (form) setUpUpload(form);
  var waiting = document.getElementById("waiting");
  if (waiting) setUpWaiting(waiting);
  announce();
})();
