// stepstone dashboard: the pages are rendered by the server; this script sends the writes
// through the JSON API (Content-Type: application/json, which the server's CSRF guard asks
// for), follows a run's events (Server-Sent Events read with fetch), and refreshes the parts of
// a page marked data-live. No framework, no build step.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ---- messages --------------------------------------------------------------------------
  let toastTimer = null;
  function toast(text, kind) {
    const el = $("#toast");
    if (!el) return;
    el.textContent = text;
    el.className = kind || "";
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }

  // ---- the JSON API ----------------------------------------------------------------------
  async function api(method, path, body) {
    const init = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      return { ok: false, status: 0, message: "the server did not answer: " + err.message };
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    const message = data && data.error ? data.error.message : response.statusText;
    return { ok: response.ok, status: response.status, data, message };
  }

  // ---- live parts of the page ------------------------------------------------------------
  // Fetch the page again and swap each [data-live] element by id. A form the user has typed
  // into is kept as it is when the new page still asks the same question.
  let refreshing = null;
  let refreshAgain = false;
  async function refresh() {
    if (refreshing) { refreshAgain = true; return refreshing; }
    refreshing = (async () => {
      try {
        const response = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
        if (!response.ok) return;
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        // a kept form is moved, which takes the focus away from the field being typed into:
        // it is given back below, caret included, so the next keys still land in that field
        const focused = document.activeElement;
        const caret = selection(focused);
        for (const old of $$("[data-live][id]")) {
          const fresh = doc.getElementById(old.id);
          if (!fresh) continue;
          for (const form of $$("form[data-answer].dirty", old)) {
            const twin = $$("form[data-answer]", fresh).find(
              (f) => f.dataset.gate === form.dataset.gate && f.dataset.run === form.dataset.run);
            if (twin) twin.replaceWith(form);
          }
          old.replaceWith(document.adoptNode(fresh));
        }
        if (focused && focused !== document.activeElement && document.contains(focused)) {
          focused.focus();
          if (caret) try { focused.setSelectionRange(caret[0], caret[1]); } catch (_) { /* no caret */ }
        }
        drawSparks();
        prefillBy();
      } catch (_) {
        // the next refresh tries again
      }
    })();
    await refreshing;
    refreshing = null;
    if (refreshAgain) { refreshAgain = false; refresh(); }
  }
  function selection(el) {
    try {
      return el && typeof el.selectionStart === "number" ? [el.selectionStart, el.selectionEnd] : null;
    } catch (_) {
      return null;  // an input type without a caret
    }
  }
  let soonTimer = null;
  function refreshSoon() {
    clearTimeout(soonTimer);
    soonTimer = setTimeout(refresh, 250);
  }

  function startPolling() {
    const periods = $$("[data-poll-self]").map((el) => parseInt(el.dataset.pollSelf, 10) || 5000);
    if (!periods.length) return;
    const every = Math.max(1000, Math.min(...periods));
    setInterval(() => { if (!document.hidden) refresh(); }, every);
  }

  // ---- the runs page's counts, over every queue ------------------------------------------
  async function loadCounts(box) {
    const result = await api("GET", box.dataset.counts);
    if (!result.ok) return;
    const sums = {};
    for (const queue of result.data.queues) {
      for (const [key, value] of Object.entries(queue)) {
        if (typeof value === "number") sums[key] = (sums[key] || 0) + value;
      }
    }
    for (const el of $$("[data-count]", box)) el.textContent = String(sums[el.dataset.count] || 0);
  }

  // ---- queue throughput sparklines (the server draws the last hour; this samples only where it
  // does not) ------------------------------------------------------------------------------
  const rates = {};
  function drawSparks() {
    for (const label of $$("[data-rate]")) {
      const name = label.dataset.rate;
      const value = parseFloat(label.textContent) || 0;
      const series = (rates[name] = rates[name] || []);
      if (series.stamp !== label) { series.push(value); series.stamp = label; }
      if (series.length > 60) series.shift();
      const svg = $$("[data-spark]").find((s) => s.dataset.spark === name);
      if (!svg || svg.hasAttribute("data-history")) continue;  // drawn by the server
      const top = Math.max(...series, 0.001);
      const step = series.length > 1 ? 120 / (series.length - 1) : 0;
      const points = series.map((v, i) => `${(i * step).toFixed(1)},${(22 - (v / top) * 20).toFixed(1)}`);
      const flat = () => { const y = points[0].split(",")[1]; return `0,${y} 120,${y}`; };
      $("polyline", svg).setAttribute("points", points.length > 1 ? points.join(" ") : flat());
    }
  }

  // ---- a run's events, as they happen ----------------------------------------------------
  function followEvents(list) {
    let last = null;
    let ended = false;
    const dot = $("[data-live-dot]");
    const add = (msg) => {
      let data = null;
      try { data = JSON.parse(msg.data); } catch (_) { data = msg.data; }
      if (msg.event === "end") {
        ended = true;
        if (dot) dot.classList.add("off");
        refreshSoon();
        return;
      }
      const li = document.createElement("li");
      const at = data && data.created_at ? data.created_at.slice(11, 23) : "";
      const detail = data && data.data !== undefined && data.data !== null ? JSON.stringify(data.data) : "";
      li.innerHTML = "<time></time> <b></b> <span></span>";
      li.children[0].textContent = at;
      li.children[1].textContent = msg.event || "message";
      li.children[2].textContent = detail.length > 200 ? detail.slice(0, 199) + "…" : detail;
      if (data && data.source === "user") li.className = "user";
      list.appendChild(li);
      if (list.children.length > 500) list.removeChild(list.firstChild);
      if (!list.dataset.finished) refreshSoon();
    };
    const connect = async () => {
      const headers = { "Accept": "text/event-stream" };
      if (last !== null) headers["Last-Event-ID"] = last;
      try {
        const response = await fetch(list.dataset.events, { headers, credentials: "same-origin" });
        if (!response.ok || !response.body) throw new Error(response.statusText);
        if (dot) dot.classList.add("on");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const msg = { data: "" };
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const colon = line.indexOf(": ");
              const field = colon >= 0 ? line.slice(0, colon) : line;
              const val = colon >= 0 ? line.slice(colon + 2) : "";
              if (field === "data") msg.data += val;
              else if (field === "event") msg.event = val;
              else if (field === "id") { msg.id = val; last = val; }
            }
            if (msg.event || msg.data) add(msg);
          }
        }
      } catch (_) {
        // reconnect below
      }
      if (dot) dot.classList.remove("on");
      if (!ended) setTimeout(connect, 2000);
    };
    connect();
  }

  // ---- answering a wait ------------------------------------------------------------------
  function put(target, path, value) {
    if (!path.length) return value;
    let node = target;
    for (const key of path.slice(0, -1)) node = node[key] = node[key] || {};
    node[path[path.length - 1]] = value;
    return target;
  }

  // The value of one field, or undefined to leave it out (the schema says whether it may be).
  function fieldValue(el) {
    const widget = el.dataset.widget;
    if (widget === "checkbox") return el.checked;
    if (widget === "multi") return $$("input:checked", el).map((box) => JSON.parse(box.value));
    if (widget === "select") return el.value === "" ? undefined : JSON.parse(el.value);
    const text = el.value.trim();
    if (text === "") return undefined;
    if (widget === "number" || widget === "integer") {
      const n = Number(text);
      return Number.isNaN(n) ? text : n; // the server names the field that is not a number
    }
    if (widget === "json") {
      try { return JSON.parse(text); } catch (err) { throw new Error(`${el.id}: not JSON (${err.message})`); }
    }
    return el.value;
  }

  async function answer(form, submitter) {
    const error = $(".form-error", form);
    error.hidden = true;
    let payload = {};
    try {
      for (const el of $$("[data-path]", form)) {
        const value = fieldValue(el);
        if (value !== undefined) payload = put(payload, JSON.parse(el.dataset.path), value);
      }
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    if (form.dataset.ask) {
      if (submitter && submitter.dataset.answerValue !== undefined) {
        payload.answer = JSON.parse(submitter.dataset.answerValue);
      }
      const by = $("[data-by]", form);
      if (by && by.value.trim()) {
        payload.by = by.value.trim();
        try { localStorage.setItem("stepstone.by", payload.by); } catch (_) { /* private mode */ }
      }
      const comment = $("[data-comment]", form);
      if (comment && comment.value.trim()) payload.comment = comment.value.trim();
    }
    for (const b of $$("button", form)) b.disabled = true;
    const path = `/api/runs/${encodeURIComponent(form.dataset.run)}/signal`;
    const result = await api("POST", path, { name: form.dataset.gate, payload });
    for (const b of $$("button", form)) b.disabled = false;
    if (!result.ok) {
      error.textContent = `${result.status}: ${result.message}`;
      error.hidden = false;
      return;
    }
    form.classList.remove("dirty");
    form.classList.add("sent");
    toast(`answered ${form.dataset.gate}`, "ok");
    refreshSoon();
  }

  // ---- buttons ---------------------------------------------------------------------------
  async function runAction(button) {
    const holder = button.closest("[data-run]");
    const runId = holder.dataset.run;
    if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
    const action = button.dataset.action;
    const body = action === "retry" ? { fresh: button.dataset.fresh === "true" } : {};
    button.disabled = true;
    const result = await api("POST", `/api/runs/${encodeURIComponent(runId)}/${action}`, body);
    button.disabled = false;
    if (!result.ok) return toast(`${action}: ${result.message}`, "bad");
    if (result.data && result.data.run_id && result.data.run_id !== runId) {
      location.href = `/runs/${encodeURIComponent(result.data.run_id)}`;
      return;
    }
    toast(`${action}: run ${runId} is ${result.data ? result.data.state : "changed"}`, "ok");
    refresh();
  }

  async function fork(button) {
    const seq = parseInt(button.dataset.fork, 10);
    if (!confirm(`Start a new run that reuses the steps before #${seq} and runs the rest anew?`)) return;
    const result = await api("POST", `/api/runs/${encodeURIComponent(button.dataset.run)}/fork`, { from_seq: seq });
    if (!result.ok) return toast(`fork: ${result.message}`, "bad");
    location.href = `/runs/${encodeURIComponent(result.data.run_id)}`;
  }

  async function scheduleAction(button) {
    const name = button.closest("[data-schedule]").dataset.schedule;
    const action = button.dataset.scheduleAction;
    const result = await api("POST", `/api/schedules/${encodeURIComponent(name)}/${action}`, {});
    if (!result.ok) return toast(`${action}: ${result.message}`, "bad");
    toast(action === "trigger" ? `started run ${result.data.run_id}` : `schedule ${name}: ${action}d`, "ok");
    refresh();
  }

  async function purge(form) {
    const seconds = Number(form.elements.older_than_s.value);
    if (!confirm(`Delete failed runs that finished more than ${seconds} s ago, with their history?`)) return;
    const result = await api("POST", "/api/dead-letters/purge", { older_than_s: seconds });
    if (!result.ok) return toast(`purge: ${result.message}`, "bad");
    toast(`purged ${result.data.purged} run(s)`, "ok");
    refresh();
  }

  async function login(form) {
    const error = $(".form-error", form);
    const result = await api("POST", "/login", { token: form.elements.token.value });
    if (!result.ok) {
      error.textContent = `${result.status}: ${result.message}`;
      error.hidden = false;
      return;
    }
    // back to the page asked for: a path of this site only ("//x", "/\\x" and "/\t/x" are other
    // sites to a browser, which drops tabs and newlines and reads a backslash as a slash)
    const next = form.dataset.next || "/";
    location.href = /^\/(?![\/\\\s])[^\\\s]*$/.test(next) ? next : "/";
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.logout !== undefined) {
      event.preventDefault();
      api("POST", "/logout", {}).then(() => { location.href = "/login"; });
      return;
    }
    if (button.dataset.action) { event.preventDefault(); runAction(button); }
    else if (button.dataset.fork) { event.preventDefault(); fork(button); }
    else if (button.dataset.scheduleAction) { event.preventDefault(); scheduleAction(button); }
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches("form[data-answer]")) { event.preventDefault(); answer(form, event.submitter); }
    else if (form.matches("form[data-purge]")) { event.preventDefault(); purge(form); }
    else if (form.matches("form[data-login]")) { event.preventDefault(); login(form); }
  });
  document.addEventListener("input", (event) => {
    const form = event.target.closest("form[data-answer]");
    if (form) form.classList.add("dirty");
  });

  function prefillBy() {
    let by = null;
    try { by = localStorage.getItem("stepstone.by"); } catch (_) { by = null; }
    if (by) for (const input of $$("input[data-by]")) if (!input.value) input.value = by;
  }

  function start() {
    prefillBy();
    for (const list of $$("[data-events]")) followEvents(list);
    for (const box of $$("[data-counts]")) {
      loadCounts(box);
      setInterval(() => { if (!document.hidden) loadCounts(box); }, 4000);
    }
    drawSparks();
    startPolling();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
