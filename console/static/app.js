// The command-centre console: sign-in, work queues with live counts, the case page with its actions, search, the
// city map and the evaluation. It reads and acts only through the staff API; every refusal shows the Chinese
// sentence the API sends (its problem+json `title`).

import { lineChart } from "./chart.js";
import { CityMap, OVERDUE_COLOUR, STATUS_COLOURS } from "./map.js";

const DATA = JSON.parse(document.getElementById("tg-data").textContent);
const M = DATA.messages;
const T = M.ui;
const C = DATA.config;
const PAGE_SIZE = 50;
const DESK_ROLES = ["dispatcher", "duty_chief"];
const QUEUE_ORDER = Object.keys(M.queues);
const DESK_BADGE = ["to_accept", "to_register", "to_dispatch", "to_close", "waiting_approval", "unclassified_reports"];
const CREW_BADGE = ["with_department"];

const fmt = (text, vars = {}) => text.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? "").toString());

// Elements are built with text nodes only: case texts come from citizens and are never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Times are shown in China time, whatever the clock of the computer showing them says.
const CHINA_TIME = new Intl.DateTimeFormat("sv-SE", {
  timeZone: "Asia/Shanghai",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});

function when(value) {
  return value ? CHINA_TIME.format(new Date(value)) : "—";
}

const CHINA_CLOCK = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});

function currentMonth() {
  return CHINA_TIME.format(new Date()).slice(0, 7);
}

// Session and API ----------------------------------------------------------------------------------------------

const session = {
  get access() {
    return sessionStorage.getItem("tg.access");
  },
  get refresh() {
    return sessionStorage.getItem("tg.refresh");
  },
  save(pair) {
    sessionStorage.setItem("tg.access", pair.access_token);
    sessionStorage.setItem("tg.refresh", pair.refresh_token);
  },
  clear() {
    sessionStorage.removeItem("tg.access");
    sessionStorage.removeItem("tg.refresh");
  },
};

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || T.error_generic);
    this.status = status;
    this.code = problem.code || "unknown";
  }
}

class SessionEnded extends ApiError {}

let refreshing = null;

function refreshSession() {
  refreshing ??= fetch("/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: session.refresh }),
  })
    .then(async (res) => {
      if (!res.ok) return false;
      session.save(await res.json());
      return true;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function api(path, { method = "GET", body, form, raw = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: "application/json" };
    if (session.access) headers.Authorization = `Bearer ${session.access}`;
    let payload;
    if (form) payload = new URLSearchParams(form);
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload });
    } catch {
      throw new ApiError(0, { title: T.error_network, code: "network" });
    }
    const signingIn = path.startsWith("/auth/token");
    if (res.status === 401 && !signingIn && attempt === 0 && session.refresh && (await refreshSession())) continue;
    if (!res.ok) {
      let problem = {};
      try {
        problem = await res.json();
      } catch {
        problem = {};
      }
      if (res.status === 401 && !signingIn) {
        endSession(T.session_ended);
        throw new SessionEnded(401, { title: T.session_ended, code: problem.code });
      }
      throw new ApiError(res.status, problem);
    }
    if (raw) return res;
    return res.status === 204 ? null : res.json();
  }
}

// Shell --------------------------------------------------------------------------------------------------------

const state = { me: null, counts: {}, view: null, poll: null, isDesk: false };

function toast(text, kind = "ok") {
  const box = document.getElementById("toast");
  if (!box) return;
  box.className = `toast ${kind}`;
  box.textContent = text;
  box.hidden = false;
  clearTimeout(box.timer);
  box.timer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
}

// Signing out starts the page afresh, so nothing of one person's session (lists, counts, views) serves the
// next person at the same desk; the sign-in form then says why.
function endSession(message) {
  session.clear();
  stopPolling();
  sessionStorage.setItem("tg.notice", message);
  location.replace(location.pathname);
}

function showSignIn(message = "") {
  const error = h("p", { id: "signin-error", class: "error", role: "alert" }, message);
  const button = h("button", { type: "submit", class: "primary" }, T.sign_in);
  const form = h(
    "form",
    { class: "signin-card", "aria-labelledby": "signin-title" },
    h("p", { class: "subtitle" }, T.app_subtitle),
    h("h1", { id: "signin-title" }, T.sign_in_title),
    h("label", { for: "username" }, T.username),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true, autofocus: true }),
    h("label", { for: "password" }, T.password),
    h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    error,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    button.textContent = T.signing_in;
    try {
      const pair = await api("/auth/token", {
        method: "POST",
        form: { username: form.username.value.trim(), password: form.password.value },
      });
      session.save(pair);
      await startShell();
    } catch (e) {
      error.textContent = e.message;
      form.password.value = "";
      form.password.focus();
    } finally {
      button.disabled = false;
      button.textContent = T.sign_in;
    }
  });
  document.body.replaceChildren(h("main", { class: "signin" }, form));
  document.title = `${T.sign_in_title} · ${T.app_subtitle}`;
  form.username.focus();
}

function roleText(grant) {
  const name = T[`role_${grant.role}`] || grant.role;
  return `${name}（${grant.department_code || grant.area_code || T.city_wide}）`;
}

async function startShell() {
  state.me = await api("/auth/me");
  state.isDesk = state.me.roles.some((g) => DESK_ROLES.includes(g.role));
  const nav = h(
    "nav",
    { "aria-label": T.app_title },
    h("a", { href: "#/queues", dataset: { nav: "queues" } }, T.nav_queues, h("span", { class: "badge", id: "nav-total" })),
    h("a", { href: "#/map", dataset: { nav: "map" } }, T.nav_map),
    state.isDesk ? h("a", { href: "#/evaluation", dataset: { nav: "evaluation" } }, T.nav_evaluation) : null,
    h("a", { href: "#/search", dataset: { nav: "search" } }, T.nav_search),
  );
  const search = h("input", {
    id: "quick-search",
    type: "search",
    placeholder: T.search_placeholder,
    "aria-label": T.number,
    autocomplete: "off",
  });
  const searchForm = h("form", { class: "quick-search", role: "search" }, search);
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = search.value.trim();
    if (value) location.hash = `#/search?number=${encodeURIComponent(value)}`;
  });
  const signOut = h("button", { type: "button", class: "link", id: "sign-out" }, T.sign_out);
  signOut.addEventListener("click", async () => {
    try {
      await api("/auth/revoke", { method: "POST" });
    } catch {
      // Signing out locally is what matters; the session ends on the server at its expiry anyway.
    }
    endSession(T.signed_out);
  });
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("strong", {}, T.app_title), h("span", {}, T.app_subtitle)),
    nav,
    searchForm,
    h(
      "div",
      { class: "who" },
      h("span", { id: "who-name" }, state.me.display_name),
      h("span", { class: "roles" }, state.me.roles.map(roleText).join("、")),
      signOut,
    ),
  );
  const main = h("main", { id: "view", tabindex: "-1" });
  const footer = h("footer", { class: "status" }, h("span", { id: "live" }), h("span", { class: "hint" }, T.shortcut_help));
  document.body.replaceChildren(header, main, footer, h("div", { id: "toast", role: "status", "aria-live": "polite", hidden: true }));
  document.title = `${T.app_title} · ${T.app_subtitle}`;
  window.onhashchange = route;
  route();
  startPolling();
}

// Live counts: every few seconds, also pushed to the view on screen so its list stays current.
function startPolling() {
  stopPolling();
  let busy = false;
  const tick = async () => {
    // One poll at a time: when the server is slow, ticks are skipped rather than piled up.
    if (busy) return;
    busy = true;
    try {
      const counts = await api("/staff/v1/queues");
      state.counts = counts;
      // The badge counts what waits for this person's hands: the desk's queues, or a crew's cases.
      const total = (state.isDesk ? DESK_BADGE : CREW_BADGE).reduce((n, q) => n + (counts[q] || 0), 0);
      const badge = document.getElementById("nav-total");
      if (badge) badge.textContent = String(total);
      const live = document.getElementById("live");
      if (live) live.textContent = fmt(T.updated_at, { time: CHINA_CLOCK.format(new Date()) });
      state.view?.onCounts?.(counts);
    } catch (e) {
      if (e instanceof SessionEnded) return;
      const live = document.getElementById("live");
      if (live) live.textContent = e.message;
    } finally {
      busy = false;
    }
  };
  tick();
  state.poll = setInterval(tick, Math.max(1, C.poll_seconds) * 1000);
}

function stopPolling() {
  clearInterval(state.poll);
  state.poll = null;
}

function route() {
  if (!state.me) return;
  state.steps = (state.steps || 0) + 1;
  const [path, query] = (location.hash || "#/queues").slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  state.view?.destroy?.();
  const main = document.getElementById("view");
  main.replaceChildren();
  let view;
  switch (parts[0]) {
    case "queues":
      view = queueView(parts[1] || (state.isDesk ? "to_accept" : "with_department"), Number(params.get("page")) || 1);
      break;
    case "cases":
      view = caseView(parts[1] || "");
      break;
    case "map":
      view = mapView();
      break;
    case "evaluation":
      view = evaluationView(params);
      break;
    case "search":
      view = searchView(params);
      break;
    case "reports":
      view = reportsView();
      break;
    default:
      location.replace("#/queues");
      return;
  }
  state.view = view;
  main.append(view.el);
  for (const link of document.querySelectorAll("nav a")) {
    const active = link.dataset.nav === (["cases", "reports"].includes(parts[0]) ? "queues" : parts[0]);
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// Lists of cases -------------------------------------------------------------------------------------------------

function caseTable(items, { caption, selected }) {
  const head = [T.number, T.subclass, T.address, T.status, T.deadline, T.opened_at];
  const rows = items.map((c) =>
    h(
      "tr",
      { tabindex: "-1", class: c.overdue ? "overdue" : "", dataset: { number: c.number } },
      h("td", {}, h("a", { href: `#/cases/${encodeURIComponent(c.number)}` }, c.number)),
      h("td", {}, c.subclass_name),
      h("td", { class: "address" }, c.address || c.unit_grid || "—"),
      h("td", {}, h("span", { class: `chip status-${c.status}` }, c.status_name), c.overdue ? h("span", { class: "chip overdue" }, T.overdue) : null),
      h("td", {}, when(c.stage_deadline)),
      h("td", {}, when(c.opened_at)),
    ),
  );
  const table = h(
    "table",
    { class: "cases" },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows),
  );
  table.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-number]");
    if (tr && !e.target.closest("a")) location.hash = `#/cases/${encodeURIComponent(tr.dataset.number)}`;
  });
  if (selected) rows.find((r) => r.dataset.number === selected)?.classList.add("selected");
  return table;
}

// j/k or arrows move through a table's rows, Enter opens the selected row: only when the keys are not meant for
// something else (a focused link or button keeps its Enter).
function tableKeys(container, event) {
  const target = event.target;
  if (target !== document.body && !target.matches?.("tbody tr")) return false;
  const rows = [...container.querySelectorAll("tbody tr[tabindex]")];
  if (!rows.length) return false;
  let current = rows.indexOf(target);
  if (current < 0) current = rows.findIndex((r) => r.classList.contains("selected"));
  let next = null;
  if (event.key === "j" || event.key === "ArrowDown") next = Math.min(rows.length - 1, current + 1);
  else if (event.key === "k" || event.key === "ArrowUp") next = Math.max(0, current - 1);
  else if (event.key === "Enter" && current >= 0) {
    const row = rows[current];
    if (row.dataset.number) location.hash = `#/cases/${encodeURIComponent(row.dataset.number)}`;
    else row.click();
    return true;
  }
  if (next === null) return false;
  rows.forEach((r, i) => r.classList.toggle("selected", i === next));
  rows[next].focus();
  return true;
}

function queueView(name, page) {
  if (!M.queues[name]) name = "to_accept";
  const counts = h(
    "ul",
    { class: "queue-list" },
    QUEUE_ORDER.map((q) =>
      h(
        "li",
        {},
        h(
          "a",
          { href: `#/queues/${q}`, class: q === name ? "active" : "", "aria-current": q === name ? "page" : null },
          h("span", {}, M.queues[q]),
          h("span", { class: `count${q === "overdue" ? " alert" : ""}`, dataset: { queue: q } }, state.counts[q] ?? "…"),
        ),
      ),
    ),
  );
  if (state.isDesk) counts.append(unclassifiedEntry(false));
  const listArea = h("div", { class: "list-area" }, h("p", { class: "muted" }, T.loading));
  // Screen readers hear the one-line summary change, not the whole table again.
  const summary = h("span", { "aria-live": "polite" });
  const heading = h("h2", {}, M.queues[name]);
  const el = h("section", { class: "queue-view" }, h("aside", { class: "queues", "aria-label": T.nav_queues }, counts), h("div", { class: "queue-main" }, heading, listArea));
  let lastTotal = null;
  let loadedAt = 0;
  let loading = false;
  let alive = true;

  async function load() {
    if (loading) return;
    loading = true;
    try {
      const offset = (page - 1) * PAGE_SIZE;
      const data = await api(`/staff/v1/cases?queue=${name}&limit=${PAGE_SIZE}&offset=${offset}`);
      if (!alive) return;
      lastTotal = data.total;
      loadedAt = Date.now();
      const selected = listArea.querySelector("tr.selected")?.dataset.number;
      const hadFocus = listArea.contains(document.activeElement);
      const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
      summary.textContent = fmt(T.page_of, { page, pages, total: data.total });
      const pager = h(
        "div",
        { class: "pager" },
        summary,
        page > 1 ? h("a", { href: `#/queues/${name}?page=${page - 1}`, class: "button" }, T.previous) : null,
        page < pages ? h("a", { href: `#/queues/${name}?page=${page + 1}`, class: "button" }, T.next) : null,
      );
      listArea.replaceChildren(
        data.items.length ? caseTable(data.items, { selected }) : h("p", { class: "empty" }, T.no_cases),
        pager,
      );
      // The keyboard stays where it was when the list is redrawn under it.
      if (hadFocus) listArea.querySelector("tr.selected")?.focus();
      el.dataset.ready = "1";
    } catch (e) {
      if (alive && !(e instanceof SessionEnded)) listArea.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    } finally {
      loading = false;
    }
  }
  load();
  return {
    el,
    onCounts(all) {
      for (const badge of counts.querySelectorAll("[data-queue]")) badge.textContent = all[badge.dataset.queue] ?? 0;
      // A new case, or one taken by a colleague: the list follows the count, and is redrawn every half minute
      // anyway (a case can leave as another arrives).
      if (all[name] !== lastTotal || Date.now() - loadedAt > 30_000) load();
    },
    keydown: (e) => tableKeys(listArea, e),
    destroy: () => {
      alive = false;
    },
  };
}

// Reports no rule could classify or place wait for a dispatcher (待分类); they sit beside the case queues.
function unclassifiedEntry(active) {
  return h(
    "li",
    { class: "separated" },
    h(
      "a",
      { href: "#/reports", class: active ? "active" : "", "aria-current": active ? "page" : null },
      h("span", {}, T.unclassified),
      h("span", { class: "count", dataset: { queue: "unclassified_reports" } }, state.counts.unclassified_reports ?? "…"),
    ),
  );
}

// Lists that change rarely (problem types, departments): asked once per page, asked again after a failure.
function once(path) {
  let promise = null;
  return () => {
    promise ??= api(path).catch((e) => {
      promise = null;
      throw e;
    });
    return promise;
  };
}

const subclassList = once("/staff/v1/subclasses");
const departments = once("/staff/v1/departments");

function reportsView() {
  const counts = h(
    "ul",
    { class: "queue-list" },
    QUEUE_ORDER.map((q) =>
      h("li", {}, h("a", { href: `#/queues/${q}` }, h("span", {}, M.queues[q]), h("span", { class: "count", dataset: { queue: q } }, state.counts[q] ?? "…"))),
    ),
    unclassifiedEntry(true),
  );
  const listArea = h("div", { class: "list-area", "aria-live": "polite" }, h("p", { class: "muted" }, T.loading));
  const el = h("section", { class: "queue-view reports-view" }, h("aside", { class: "queues", "aria-label": T.nav_queues }, counts), h("div", { class: "queue-main" }, h("h2", {}, T.unclassified_title), listArea));
  let lastTotal = null;

  async function load() {
    try {
      const reports = await api("/staff/v1/reports?status=queued&limit=200");
      lastTotal = reports.length;
      if (!reports.length) {
        listArea.replaceChildren(h("p", { class: "empty" }, T.no_reports));
      } else {
        const rows = reports.map((r) =>
          h(
            "tr",
            { dataset: { report: String(r.id) } },
            h("td", {}, String(r.id)),
            h("td", {}, M.sources[r.source] || r.source),
            h("td", { class: "address" }, r.text),
            h("td", { class: "address" }, r.address || "—"),
            h("td", {}, M.reasons[r.status_reason.split(":")[0]] || r.status_reason),
            h("td", {}, when(r.created_at)),
            h("td", {}, h("button", { type: "button", class: "primary", onclick: () => classifyDialog(r, load) }, T.classify)),
          ),
        );
        const head = [T.report_id, T.source, T.report_text, T.address, T.reason, T.received_at, ""];
        listArea.replaceChildren(h("table", { class: "cases reports" }, h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows)));
      }
      el.dataset.ready = "1";
    } catch (e) {
      if (!(e instanceof SessionEnded)) listArea.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  }
  load();
  return {
    el,
    onCounts(all) {
      for (const badge of counts.querySelectorAll("[data-queue]")) badge.textContent = all[badge.dataset.queue] ?? 0;
      if (all.unclassified_reports !== lastTotal && !document.querySelector("dialog[open]")) load();
    },
  };
}

// A modal form: a title, its fields, a line for refusals, confirm and cancel; gone from the page once closed.
function formDialog(title, ...fields) {
  const error = h("p", { class: "error", role: "alert" });
  const confirm = h("button", { type: "submit", class: "primary" }, T.confirm);
  const cancel = h("button", { type: "button" }, T.cancel);
  const form = h("form", { method: "dialog" }, h("h3", {}, title), fields, error, h("div", { class: "dialog-buttons" }, confirm, cancel));
  const dialog = h("dialog", { class: "action-dialog" }, form);
  document.body.append(dialog);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  return { dialog, form, error, confirm };
}

async function classifyDialog(report, reload) {
  const select = h("select", { name: "subclass", required: true, size: "12" });
  const { dialog, form, error, confirm } = formDialog(
    fmt(T.classify_title, { id: report.id }),
    h("p", { class: "description" }, report.text),
    h("label", {}, T.subclass, select),
  );
  try {
    const groups = new Map();
    for (const s of await subclassList()) {
      const label = `${M.kinds[s.kind] || s.kind} · ${s.major_name}`;
      if (!groups.has(label)) groups.set(label, h("optgroup", { label }));
      groups.get(label).append(h("option", { value: s.subclass }, `${s.name}（${s.subclass.split(":")[1]}）`));
    }
    select.append(...groups.values());
  } catch (e) {
    error.textContent = e.message;
  }
  dialog.showModal();
  select.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!select.value) return;
    confirm.disabled = true;
    try {
      await api(`/staff/v1/reports/${report.id}/classify`, { method: "POST", body: { subclass: select.value } });
      dialog.close();
      toast(T.classified);
      reload();
    } catch (e) {
      if (e instanceof SessionEnded) return;
      error.textContent = e.message;
      confirm.disabled = false;
    }
  });
}

function searchView(params) {
  const statuses = h("select", { name: "status", id: "s-status" }, h("option", { value: "" }, T.any_status), Object.entries(M.statuses).map(([k, v]) => h("option", { value: k }, v)));
  const form = h(
    "form",
    { class: "search-form" },
    h("label", {}, T.number, h("input", { name: "number", value: params.get("number") || "", autocomplete: "off" })),
    h("label", {}, T.status, statuses),
    h("label", {}, T.grid, h("input", { name: "grid", value: params.get("grid") || "", inputmode: "numeric" })),
    h("label", {}, T.since, h("input", { name: "since", type: "date", value: params.get("since") || "" })),
    h("label", {}, T.until, h("input", { name: "until", type: "date", value: params.get("until") || "" })),
    h("button", { type: "submit", class: "primary" }, T.search),
  );
  statuses.value = params.get("status") || "";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v.trim());
    location.hash = `#/search?${q}`;
  });
  const results = h("div", { class: "list-area", "aria-live": "polite" });
  const el = h("section", { class: "search-view" }, h("h2", {}, T.search_title), form, results);
  const page = Math.max(1, Number(params.get("page")) || 1);
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String((page - 1) * PAGE_SIZE) });
  for (const k of ["number", "status", "grid"]) if (params.get(k)) query.set(k, params.get(k));
  if (params.get("since")) query.set("since", `${params.get("since")}T00:00:00+08:00`);
  if (params.get("until")) query.set("until", `${params.get("until")}T23:59:59+08:00`);
  const asked = [...params.keys()].length > 0;
  if (asked) {
    results.replaceChildren(h("p", { class: "muted" }, T.loading));
    api(`/staff/v1/cases?${query}`)
      .then((data) => {
        const number = params.get("number");
        if (number && data.total === 1 && data.items[0].number === number && [...params.keys()].length === 1) {
          location.replace(`#/cases/${encodeURIComponent(number)}`);
          return;
        }
        if (!data.total) {
          const text = number ? fmt(T.case_not_found_number, { number }) : T.no_results;
          results.replaceChildren(h("p", { class: "error", role: "alert" }, text));
          return;
        }
        const pages = Math.ceil(data.total / PAGE_SIZE);
        const at = (n) => {
          const next = new URLSearchParams(params);
          next.set("page", String(n));
          return `#/search?${next}`;
        };
        results.replaceChildren(
          caseTable(data.items, {}),
          h(
            "div",
            { class: "pager" },
            h("span", {}, fmt(T.page_of, { page, pages, total: data.total })),
            page > 1 ? h("a", { href: at(page - 1), class: "button" }, T.previous) : null,
            page < pages ? h("a", { href: at(page + 1), class: "button" }, T.next) : null,
          ),
        );
      })
      .catch((e) => {
        if (!(e instanceof SessionEnded)) results.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
      });
  }
  return { el, keydown: (e) => tableKeys(results, e) };
}

// The case page -------------------------------------------------------------------------------------------------

function caseView(number) {
  const el = h("section", { class: "case-view" }, h("p", { class: "muted" }, T.loading));
  let minimap = null;
  let alive = true;

  async function load() {
    let c;
    try {
      c = await api(`/staff/v1/cases/${encodeURIComponent(number)}`);
      if (!alive) return;
    } catch (e) {
      if (e instanceof SessionEnded || !alive) return;
      el.replaceChildren(h("a", { href: "#/queues", class: "back" }, `← ${T.back}`), h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    render(c);
  }

  function render(c) {
    minimap?.destroy();
    const fact = (label, value) => [h("dt", {}, label), h("dd", {}, value || "—")];
    const photos = c.reports.flatMap((r) => r.photos);
    const actions = h(
      "div",
      { class: "actions", role: "group", "aria-label": T.actions },
      c.allowed_actions.length
        ? c.allowed_actions.map((a, i) =>
            h("button", { type: "button", class: i === 0 ? "primary" : "", dataset: { action: a }, onclick: () => actionDialog(c, a, load) }, M.actions[a] || a),
          )
        : h("p", { class: "muted" }, T.no_actions),
    );
    const timeline = h(
      "ol",
      { class: "timeline" },
      c.timeline.map((e) =>
        h(
          "li",
          {},
          h("time", {}, when(e.at)),
          h("strong", {}, e.action_name),
          e.to_status && e.to_status !== e.from_status ? h("span", { class: `chip status-${e.to_status}` }, M.statuses[e.to_status] || e.to_status) : null,
          h("span", { class: "actor" }, e.actor_name || ""),
          e.note ? h("p", { class: "note" }, e.note) : null,
          e.media?.length ? h("div", { class: "photos small" }, e.media.map((m) => photo(c, m))) : null,
        ),
      ),
    );
    const mapBox = h("div", { class: "minimap", "aria-label": T.location });
    el.replaceChildren(
      h(
        "div",
        { class: "case-head" },
        h("a", { href: "#/queues", class: "back" }, `← ${T.back}`),
        h("h2", {}, c.number),
        h("span", { class: `chip status-${c.status}`, id: "case-status" }, c.status_name),
        c.overdue ? h("span", { class: "chip overdue" }, T.overdue) : null,
        c.paused ? h("span", { class: "chip" }, T.paused) : null,
      ),
      h(
        "div",
        { class: "case-body" },
        h(
          "div",
          { class: "case-main" },
          h("dl", { class: "facts" }, [
            fact(T.subclass, c.subclass_name),
            fact(T.address, c.address),
            fact(T.district, c.district_name || c.district),
            fact(T.street, c.street_name || c.street),
            fact(T.grid, c.unit_grid),
            fact(T.department, c.department_name || c.department),
            fact(T.deadline, c.stage_deadline ? `${M.stages[c.stage] || c.stage} · ${when(c.stage_deadline)}` : null),
            fact(T.urgency, M.urgency[c.urgency] || c.urgency),
            fact(T.routing, c.routing_reason),
            fact(T.reports, String(c.report_count)),
          ]),
          h("h3", {}, T.description),
          h("p", { class: "description" }, c.description || c.reports[0]?.text || "—"),
          h("h3", {}, T.photos),
          photos.length ? h("div", { class: "photos" }, photos.map((m) => photo(c, m))) : h("p", { class: "muted" }, T.no_photos),
          h("h3", {}, T.timeline),
          timeline,
        ),
        h("div", { class: "case-side" }, h("h3", {}, T.actions), actions, h("p", { class: "error", role: "alert", id: "action-error" }), h("h3", {}, T.location), mapBox),
      ),
    );
    el.dataset.status = c.status;
    minimap = new CityMap(mapBox, {
      api,
      center: C.city_center,
      layers: { heat: false, cases: false, grids: true },
      statusNames: M.statuses,
      labels: { aria: T.location, overdue: T.overdue, open: T.open_case },
    });
    minimap.setMarker(c.lon, c.lat);
    minimap.focus(c.lon, c.lat, 15.5);
    minimap.load({ fit: false }).catch(() => {});
    el.querySelector(".actions button")?.focus();
  }

  load();
  return {
    el,
    destroy: () => {
      alive = false;
      minimap?.destroy();
    },
    keydown(e) {
      if (e.key === "Escape") {
        // Back where the dispatcher came from, or to the queues when the case was opened from outside.
        if (state.steps > 1) history.back();
        else location.hash = "#/queues";
        return true;
      }
      return false;
    },
  };
}

function photo(c, mediaId) {
  const links = c.photos[mediaId];
  if (!links) return null;
  const link = h("a", { href: links.display_url, target: "_blank", rel: "noopener" }, h("img", { src: links.thumb_url, alt: T.photos, loading: "lazy" }));
  return link;
}

async function actionDialog(c, action, reload) {
  const needsNote = C.note_actions.includes(action);
  const choosesDepartment = action === "dispatch" || action === "redispatch";
  const note = h("textarea", { name: "note", rows: "3", required: needsNote, maxlength: "500" });
  const select = choosesDepartment ? h("select", { name: "department", required: true }) : null;
  const { dialog, form, error, confirm } = formDialog(
    `${M.actions[action] || action} · ${c.number}`,
    select ? h("label", {}, T.choose_department, select) : null,
    h("label", {}, T.note, note),
  );
  if (select) {
    try {
      const list = await departments();
      select.append(...list.map((d) => h("option", { value: d.code }, `${d.name}（${d.code}）`)));
      if (c.department) select.value = c.department;
    } catch (e) {
      error.textContent = e.message;
    }
  }
  dialog.showModal();
  (select || note).focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (needsNote && !note.value.trim()) {
      error.textContent = T.note_required;
      note.focus();
      return;
    }
    confirm.disabled = true;
    const detail = select ? { department_code: select.value } : {};
    try {
      await api(`/staff/v1/cases/${encodeURIComponent(c.number)}/actions/${action}`, {
        method: "POST",
        body: { note: note.value.trim(), detail },
      });
      dialog.close();
      toast(fmt(T.done, { action: M.actions[action] || action }));
      reload();
    } catch (e) {
      if (e instanceof SessionEnded) return;
      error.textContent = e.message;
      confirm.disabled = false;
    }
  });
}

// The map ------------------------------------------------------------------------------------------------------

function mapView() {
  const box = h("div", { class: "map-box" });
  const totals = h("p", { class: "map-totals", "aria-live": "polite" });
  const layerBox = (name, label, checked) => {
    const input = h("input", { type: "checkbox", name, checked });
    input.addEventListener("change", () => {
      map.setLayer(name, input.checked);
      if (name === "heat" && input.checked && !map.heat) loadHeat();
    });
    return h("label", { class: "check" }, input, label);
  };
  const heatSelect = h("select", { id: "heat-subclass", "aria-label": T.heat_subclass }, h("option", { value: "" }, T.heat_all));
  heatSelect.addEventListener("change", () => loadHeat());
  const swatch = (colour, ring = false) => {
    const mark = h("span", { class: ring ? "swatch ring" : "swatch" });
    // Styles set through the DOM: the page's content policy refuses inline style attributes.
    if (ring) mark.style.borderColor = colour;
    else mark.style.background = colour;
    return mark;
  };
  const legend = h(
    "ul",
    { class: "legend" },
    Object.entries(STATUS_COLOURS).map(([status, colour]) => h("li", {}, swatch(colour), M.statuses[status] || status)),
    h("li", {}, swatch(OVERDUE_COLOUR, true), T.overdue),
  );
  const zoomButtons = h(
    "div",
    { class: "zoom" },
    h("button", { type: "button", "aria-label": T.zoom_in, onclick: () => map.zoomBy(1.5) }, "+"),
    h("button", { type: "button", "aria-label": T.zoom_out, onclick: () => map.zoomBy(1 / 1.5) }, "−"),
    h("button", { type: "button", onclick: () => map.reset() }, T.zoom_reset),
  );
  const panel = h(
    "aside",
    { class: "map-panel" },
    h("h2", {}, T.nav_map),
    totals,
    h("fieldset", {}, h("legend", {}, T.map_layers), [
      layerBox("districts", T.layer_districts, true),
      layerBox("streets", T.layer_streets, true),
      layerBox("grids", T.layer_grids, true),
      layerBox("cases", T.layer_cases, true),
      layerBox("heat", T.layer_heat, false),
    ]),
    h("label", {}, T.heat_subclass, heatSelect),
    h("h3", {}, T.legend),
    legend,
    zoomButtons,
  );
  const el = h("section", { class: "map-view" }, panel, box);
  const map = new CityMap(box, {
    api,
    center: C.city_center,
    tilesUrl: C.tiles_url,
    statusNames: M.statuses,
    labels: { aria: T.nav_map, overdue: T.overdue, open: T.open_case },
    onOpenCase: (number) => {
      location.hash = `#/cases/${encodeURIComponent(number)}`;
    },
  });
  window.tgMap = map;
  box.addEventListener("cases", (e) => {
    totals.textContent = fmt(T.map_counts, e.detail);
  });

  async function loadHeat() {
    try {
      const data = await map.loadHeat(heatSelect.value || null);
      if (heatSelect.options.length === 1) {
        heatSelect.append(...data.subclasses.map((s) => h("option", { value: s.subclass }, `${s.name}（${s.count}）`)));
      }
    } catch (e) {
      if (!(e instanceof SessionEnded)) toast(e.message, "error");
    }
  }

  let lastCounts = Object.keys(state.counts).length ? JSON.stringify(state.counts) : null;
  const started = performance.now();
  map
    .load()
    .then(() => {
      el.dataset.ready = "1";
      el.dataset.renderMs = String(Math.round(performance.now() - started));
    })
    .catch((e) => {
      if (!(e instanceof SessionEnded)) box.append(h("p", { class: "error", role: "alert" }, e.message));
    });
  return {
    el,
    onCounts(counts) {
      // All open cases are a large answer: asked again when the queues moved, or once a minute for the overdue
      // rings, and not while the tab is hidden.
      const fingerprint = JSON.stringify(counts);
      if (lastCounts === null) {
        lastCounts = fingerprint; // the first counts after the map loaded its own cases
        return;
      }
      if (document.hidden || (fingerprint === lastCounts && Date.now() - map.casesAt < 60_000)) return;
      lastCounts = fingerprint;
      map.reloadCases().catch(() => {});
    },
    destroy: () => {
      map.destroy();
      if (window.tgMap === map) window.tgMap = null;
    },
  };
}

// The evaluation ------------------------------------------------------------------------------------------------

const EVAL_DIMENSIONS = ["department", "district", "street", "road", "grid", "inspector"];
const EVAL_COLUMNS = {
  area: ["registered", "closed", "close_rate", "on_time_dispose_rate", "rework_rate", "avg_dispose_hours", "satisfaction_rate"],
  inspector: ["field_reports", "valid_report_rate", "miss_rate", "verify_on_time_rate", "check_on_time_rate"],
};

const COUNT_COLUMNS = new Set(["registered", "closed", "field_reports"]);

function number(value, column) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number" || COUNT_COLUMNS.has(column)) return String(value);
  return column === "avg_dispose_hours" ? value.toFixed(1) : value.toFixed(2);
}

function evaluationView(params) {
  const by = EVAL_DIMENSIONS.includes(params.get("by")) ? params.get("by") : "department";
  const period = params.get("period") || currentMonth();
  const bySelect = h("select", { name: "by", id: "eval-by" }, EVAL_DIMENSIONS.map((d) => h("option", { value: d }, M.dimensions[d])));
  bySelect.value = by;
  const periodInput = h("input", { name: "period", id: "eval-period", type: "month", value: period, required: true });
  const exportButton = h("button", { type: "button", id: "eval-export" }, T.export_csv);
  const form = h(
    "form",
    { class: "eval-form" },
    h("label", {}, T.dimension, bySelect),
    h("label", {}, T.period, periodInput),
    h("button", { type: "submit", class: "primary" }, T.evaluate),
    exportButton,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/evaluation?by=${bySelect.value}&period=${encodeURIComponent(periodInput.value)}`;
  });
  const tableArea = h("div", { class: "eval-table", "aria-live": "polite" }, h("p", { class: "muted" }, T.loading));
  const lists = h("div", { class: "red-black" });
  const trend = h("div", { class: "trend" }, h("h3", {}, T.trend), h("p", { class: "muted" }, T.trend_hint));
  const el = h("section", { class: "eval-view" }, h("h2", {}, T.evaluation_title), form, h("div", { class: "eval-body" }, tableArea, h("div", { class: "eval-side" }, trend, lists)));

  exportButton.addEventListener("click", async () => {
    try {
      const res = await api(`/staff/v1/evaluation/export?by=${by}&period=${encodeURIComponent(period)}`, { raw: true });
      const blob = await res.blob();
      const link = h("a", { href: URL.createObjectURL(blob), download: `evaluation-${by}-${period}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (e) {
      if (!(e instanceof SessionEnded)) toast(e.message, "error");
    }
  });

  let trendAsked = 0;
  async function showTrend(row) {
    const asked = ++trendAsked;
    trend.replaceChildren(h("h3", {}, fmt(T.trend_of, { name: row.name })), h("p", { class: "muted" }, T.loading));
    try {
      const points = await api(`/staff/v1/evaluation/trend?by=${by}&key=${encodeURIComponent(row.key)}&months=12`);
      if (asked !== trendAsked) return; // another row was chosen meanwhile
      trend.replaceChildren(
        h("h3", {}, fmt(T.trend_of, { name: row.name })),
        lineChart(points.map((p) => ({ label: p.period, value: p.score, band: p.band })), { title: fmt(T.trend_of, { name: row.name }) }),
      );
      trend.dataset.key = row.key;
    } catch (e) {
      if (!(e instanceof SessionEnded)) trend.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  }

  async function load() {
    try {
      const rows = await api(`/staff/v1/evaluation?by=${by}&period=${encodeURIComponent(period)}`);
      if (!rows.length) {
        tableArea.replaceChildren(h("p", { class: "empty" }, T.no_rows));
      } else {
        const columns = by === "inspector" ? EVAL_COLUMNS.inspector : EVAL_COLUMNS.area;
        const body = rows.map((row, i) =>
          h(
            "tr",
            { tabindex: "0", dataset: { key: row.key } },
            h("td", {}, String(i + 1)),
            h("td", {}, row.name || row.key),
            columns.map((col) => h("td", { class: "num" }, number(row[col], col))),
            h("td", { class: "num" }, number(row.score, "score")),
            h("td", {}, row.band ? h("span", { class: `band band-${row.band}`, title: M.bands[row.band] }, row.band) : "—"),
          ),
        );
        const table = h(
          "table",
          { class: "evaluation" },
          h("caption", {}, `${M.dimensions[by]} · ${period}`),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, T.rank), h("th", { scope: "col" }, M.columns.name), columns.map((col) => h("th", { scope: "col" }, M.columns[col])), h("th", { scope: "col" }, T.score), h("th", { scope: "col" }, T.band))),
          h("tbody", {}, body),
        );
        const choose = (tr) => {
          table.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
          tr.classList.add("selected");
          showTrend(rows.find((r) => r.key === tr.dataset.key));
        };
        table.addEventListener("click", (e) => {
          const tr = e.target.closest("tbody tr");
          if (tr) choose(tr);
        });
        table.addEventListener("keydown", (e) => {
          const tr = e.target.closest("tbody tr");
          if (tr && (e.key === "Enter" || e.key === " ")) {
            e.preventDefault();
            e.stopPropagation(); // chosen here; the page's own Enter handling would choose it twice
            choose(tr);
          }
        });
        tableArea.replaceChildren(table);
      }
      if (by === "road") {
        const result = await api(`/staff/v1/evaluation/roads?period=${encodeURIComponent(period)}`);
        const list = (title, items, cls) =>
          h(
            "div",
            { class: `list ${cls}` },
            h("h3", {}, title),
            items.length ? h("ol", {}, items.map((r) => h("li", {}, h("span", {}, r.name || r.key), h("span", { class: "num" }, number(r.score, "score")), r.band ? h("span", { class: `band band-${r.band}` }, r.band) : null))) : h("p", { class: "muted" }, T.no_rows),
          );
        lists.replaceChildren(
          h("p", { class: "muted" }, fmt(T.red_black_title, { min: 3, eligible: result.eligible })),
          list(T.red_list, result.red, "red"),
          list(T.black_list, result.black, "black"),
        );
      }
      el.dataset.ready = "1";
    } catch (e) {
      if (!(e instanceof SessionEnded)) tableArea.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  }
  load();
  return { el, keydown: (e) => tableKeys(tableArea, e) };
}

// Keyboard ------------------------------------------------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  if (!state.me || event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return;
  const typing = event.target.closest?.("input, textarea, select");
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (state.view?.keydown?.(event)) {
    event.preventDefault();
    return;
  }
  const go = { 1: "#/queues", 2: "#/map", 3: state.isDesk ? "#/evaluation" : null }[event.key];
  if (go) {
    location.hash = go;
    event.preventDefault();
  } else if (event.key === "/") {
    event.preventDefault();
    document.getElementById("quick-search")?.focus();
  } else if (event.key === "?") {
    toast(T.shortcut_help);
  }
});

// Start --------------------------------------------------------------------------------------------------------

if (session.access) {
  startShell().catch((e) => {
    if (!(e instanceof SessionEnded)) showSignIn(e.message);
  });
} else {
  const notice = sessionStorage.getItem("tg.notice") || "";
  sessionStorage.removeItem("tg.notice");
  showSignIn(notice);
}
