// critique-synth view: one page, three views (summary, list, record), routed by the URL hash.
// Everything the server sends is text: it is put in the page with textContent, never as HTML.
"use strict";

const app = document.getElementById("app");
const FILTERS = ["kind", "verdict", "agreement", "teacher", "error_kind", "reason", "review", "q"];
const PAGE = 50;
let summaryCache = null;
let listState = { rows: [], selected: 0 };
let current = null; // the record on screen

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, options) {
  const res = await fetch(path, options);
  if (!res.ok) {
    const body = await res.text();
    let message = body;
    try { message = JSON.parse(body).error || body; } catch (e) { /* not JSON: show it as it came */ }
    throw new Error(`${res.status}: ${message}`);
  }
  return res.json();
}

function route() {
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  document.getElementById("nav-summary").classList.toggle("active", !path || path === "/");
  document.getElementById("nav-records").classList.toggle("active", (path || "").startsWith("/record"));
  const match = /^\/record\/(\d+)$/.exec(path || "");
  const show = match ? showRecord(Number(match[1]), params) : path === "/records" ? showList(params) : showSummary();
  show.catch((err) => app.replaceChildren(h("p", { class: "error" }, String(err))));
}

function filterQuery(params) {
  const out = new URLSearchParams();
  for (const name of FILTERS) if (params.get(name)) out.set(name, params.get(name));
  return out;
}

const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : n ?? "–");
const pct = (a, b) => (b ? `${((100 * a) / b).toFixed(1)}%` : "–");

// ---------- summary ----------

function stacked(counts, classes) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const bar = h("div", { class: "bar", title: JSON.stringify(counts) },
    Object.entries(counts).map(([k, v]) => h("span", { class: classes[k] || "unknown", style: `width:${total ? (100 * v) / total : 0}%` })));
  const legend = h("div", { class: "legend" },
    Object.entries(counts).map(([k, v]) => h("span", {}, h("i", { class: classes[k] || "unknown" }), `${k} ${fmt(v)} (${pct(v, total)})`)));
  return [bar, legend];
}

function bars(counts, link) {
  const max = Math.max(1, ...Object.values(counts));
  return Object.entries(counts).map(([k, v]) => h("div", { class: "hbar" },
    link ? h("a", { href: link(k) }, k) : h("span", {}, k),
    h("div", {}, h("div", { class: "fill", style: `width:${(100 * v) / max}%` })),
    h("span", { class: "num" }, fmt(v))));
}

function table(head, rows) {
  return h("table", {}, h("tr", {}, head.map((c, i) => h("th", { class: i ? "num" : "" }, c))),
    rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: i ? "num" : "" }, c)))));
}

function genericTable(value) {
  // audit results: a dict of per-teacher metric dicts becomes a table, anything else key/values
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value);
    const nested = entries.length && entries.every(([, v]) => v && typeof v === "object" && !Array.isArray(v));
    if (nested) {
      const cols = [...new Set(entries.flatMap(([, v]) => Object.keys(v)))];
      return table(["", ...cols], entries.map(([k, v]) => [k, ...cols.map((c) => show(v[c]))]));
    }
    const when = (k, v) => (k.endsWith("_at") && typeof v === "number" ? new Date(v * 1000).toISOString().slice(0, 19) : show(v));
    return h("table", { class: "kv" }, entries.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, when(k, v)))));
  }
  return h("pre", { class: "raw" }, JSON.stringify(value, null, 2));
}

function show(v) {
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") return Number.isInteger(v) ? fmt(v) : v.toFixed(4);
  if (v && typeof v === "object") return JSON.stringify(v);
  return v ?? "–";
}

async function showSummary() {
  const s = await api("/api/summary");
  summaryCache = s;
  const listLink = (params) => `#/records?${new URLSearchParams(params)}`;
  const card = (title, ...body) => h("section", { class: "card" }, h("h2", {}, title), ...body);
  const wide = (el) => { el.classList.add("wide"); return el; };
  const cards = [];
  cards.push(card("Verdict balance", stacked(s.verdicts, { right: "right", wrong: "wrong" })));
  cards.push(card("Agreement with the labels, by reference",
    Object.entries(s.agreement_by_reference).map(([ref, c]) => [h("h3", {}, ref), stacked(c, { agree: "agree", disagree: "disagree" })]),
    h("h3", {}, "first wrong step (wrong responses with a labelled step)"), stacked(s.step_agreement, { agree: "agree", disagree: "disagree" }),
    h("p", {}, h("a", { href: listLink({ agreement: "disagree" }) }, "records that disagree with their label →"))));
  if (Object.keys(s.reject_reasons).length)
    cards.push(card("Reject reasons", bars(s.reject_reasons, (r) => listLink({ kind: "reject", reason: r }))));
  const teachers = Object.entries(s.teachers);
  cards.push(wide(card("Teachers", table(["teacher", "critiques", "rejected", "right", "wrong", "agrees", "step agrees", "cost $"],
    teachers.map(([name, t]) => [h("a", { href: listLink({ teacher: name }) }, name), fmt(t.critiques), fmt(t.rejected), fmt(t.right), fmt(t.wrong),
      pct(t.agreement.agree, t.agreement.agree + t.agreement.disagree),
      pct(t.step_agreement.agree, t.step_agreement.agree + t.step_agreement.disagree), t.usage.cost.toFixed(4)])))));
  if (s.teacher_pairs.length)
    cards.push(card("Teacher agreement (same responses)",
      table(["teachers", "shared", "same verdict"], s.teacher_pairs.map((p) => [`${p.a} / ${p.b}`, fmt(p.shared), pct(p.same_verdict, p.shared)])),
      h("p", {}, h("a", { href: listLink({ agreement: "teachers_disagree" }) }, `${fmt(s.teachers_disagree)} records where teachers disagree →`))));
  const kinds = Object.entries(s.error_kinds);
  if (kinds.length) {
    const names = teachers.map(([n]) => n);
    cards.push(card("Missed errors, by error kind (missed / critiques)",
      table(["error kind", ...names], kinds.map(([kind, per]) => [h("a", { href: listLink({ error_kind: kind, agreement: "disagree" }) }, kind),
        ...names.map((n) => (per[n] ? `${fmt(per[n].missed)} / ${fmt(per[n].critiques)} (${pct(per[n].missed, per[n].critiques)})` : "–"))]))));
  }
  cards.push(card("Cost", h("table", { class: "kv" },
    h("tr", {}, h("td", {}, "cost (USD)"), h("td", {}, s.usage.cost.toFixed(4))),
    h("tr", {}, h("td", {}, "prompt tokens"), h("td", {}, fmt(s.usage.prompt_tokens))),
    h("tr", {}, h("td", {}, "completion tokens"), h("td", {}, fmt(s.usage.completion_tokens))))));
  for (const audit of s.audit)
    cards.push(card(`Audit: ${audit.run_dir}`, audit.metrics ? genericTable(audit.metrics) : h("p", { class: "muted" }, "no audit.json"),
      h("p", { class: "muted" }, `audit.jsonl: ${fmt(audit.lines)} line(s)`)));
  cards.push(card("Runs", s.runs.map((r, i) => [h("h3", {}, s.run_dirs[i]), genericTable(r)]),
    h("p", { class: "muted" }, `review file: ${s.review_file} (keep ${s.review.keep}, drop ${s.review.drop})`)));
  const stat = (id, label, value) => h("div", { class: "stat" }, h("b", { id }, fmt(value)), label);
  app.replaceChildren(h("div", { id: "summary" },
    h("div", { class: "stats" }, stat("count-critiques", "critiques", s.critiques), stat("count-rejected", "rejected", s.rejected),
      stat("count-teachers", "teachers", teachers.length), stat("count-disagree", "disagree with label",
        Object.values(s.agreement_by_reference).reduce((a, c) => a + c.disagree, 0)),
      stat("count-reviewed", "reviewed", s.review.keep + s.review.drop),
      s.unreadable_lines ? stat("count-unreadable", "unreadable lines", s.unreadable_lines) : null),
    h("div", { class: "grid" }, cards)));
}

// ---------- list ----------

async function showList(params) {
  const s = summaryCache || (summaryCache = await api("/api/summary"));
  const offset = Number(params.get("offset") || 0);
  const query = filterQuery(params);
  const data = await api(`/api/records?${query}&offset=${offset}&limit=${PAGE}`);
  const go = (changes) => {
    const next = filterQuery(params);
    for (const [k, v] of Object.entries(changes)) (v ? next.set(k, v) : next.delete(k));
    location.hash = `#/records?${next}`;
  };
  const select = (name, options) => h("select", { id: `f-${name}`, onchange: (e) => go({ [name]: e.target.value }) },
    h("option", { value: "" }, `${name.replace("_", " ")}: any`),
    options.map((o) => h("option", { value: o, selected: params.get(name) === o }, o)));
  const search = h("input", { id: "f-q", type: "search", placeholder: "search question or problem id  ( / )", value: params.get("q") || "" });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") go({ q: search.value.trim() }); });
  const f = s.filters;
  const filters = h("div", { class: "filters" },
    select("kind", ["record", "reject"]), select("verdict", ["right", "wrong"]), select("agreement", f.agreements),
    select("teacher", f.teachers), select("error_kind", ["none", ...f.error_kinds]), select("reason", f.reasons),
    select("review", ["keep", "drop", "unreviewed"]), search, h("button", { onclick: () => { location.hash = "#/records"; } }, "clear"));
  listState = { rows: data.rows, selected: 0, query };
  const rows = data.rows.map((r, i) => h("tr", { class: "row", "data-row": r.row, "data-key": r.key, onclick: () => openRow(i) },
    h("td", { class: "num" }, r.row), h("td", {}, r.problem_id), h("td", {}, r.question || h("span", { class: "muted" }, "(reject)")),
    h("td", {}, r.teacher || r.stage || ""), h("td", {}, r.kind === "reject" ? pill(r.reason, "wrong") : pill(r.verdict, r.verdict)),
    h("td", {}, r.kind === "record" ? agreePill(r.agrees, r.reference) : ""),
    h("td", {}, r.error_kind || ""), h("td", { class: "num" }, stepText(r)), h("td", {}, r.review ? pill(r.review, r.review === "keep" ? "right" : "wrong") : "")));
  const end = Math.min(offset + PAGE, data.total);
  const pager = h("div", { class: "pager" },
    h("button", { id: "prev-page", disabled: offset === 0, onclick: () => go({ offset: String(Math.max(0, offset - PAGE)) }) }, "← prev"),
    h("span", { id: "list-total" }, data.total ? `${fmt(offset + 1)}–${fmt(end)} of ${fmt(data.total)}` : "no records match"),
    h("button", { id: "next-page", disabled: end >= data.total, onclick: () => go({ offset: String(offset + PAGE) }) }, "next →"));
  app.replaceChildren(filters, h("div", { class: "card" }, h("table", { id: "list" },
    h("tr", {}, ["#", "problem", "question", "teacher", "verdict", "label", "error kind", "step t/l", "review"].map((c) => h("th", {}, c))), rows)), pager);
  highlight();
}

const pill = (text, cls) => h("span", { class: `pill ${cls}` }, text);
const agreePill = (agrees, reference) => agrees === null || agrees === undefined
  ? pill("unknown", "unknown") : pill(`${agrees ? "agrees" : "disagrees"} (${reference === "process" ? "process" : "answer"})`, agrees ? "right" : "wrong");
const stepText = (r) => (r.kind === "record" ? `${r.first_wrong_step ?? "–"} / ${r.label_step ?? "–"}` : "");

function highlight() {
  document.querySelectorAll("#list tr.row").forEach((tr, i) => tr.classList.toggle("selected", i === listState.selected));
  const sel = document.querySelectorAll("#list tr.row")[listState.selected];
  if (sel) sel.scrollIntoView({ block: "nearest" });
}

function openRow(i) {
  const r = listState.rows[i];
  if (r) location.hash = `#/record/${r.row}?${listState.query}`;
}

// ---------- record ----------

async function showRecord(row, params) {
  const query = filterQuery(params);
  const r = await api(`/api/record/${row}?${query}`);
  current = { record: r, query };
  const nav = r._nav;
  const to = (target) => target !== null && target !== undefined && (location.hash = `#/record/${target}?${query}`);
  const bar = h("div", { class: "recordbar" },
    h("a", { href: `#/records?${query}`, id: "back" }, "← list"),
    h("button", { id: "prev-record", disabled: nav.prev === null, onclick: () => to(nav.prev) }, "← prev"),
    h("span", {}, nav.position === null ? "not in this filter" : `${fmt(nav.position + 1)} of ${fmt(nav.total)}`),
    h("button", { id: "next-record", disabled: nav.next === null, onclick: () => to(nav.next) }, "next →"),
    h("span", { class: "grow" }),
    r._kind === "record" ? [
      h("span", { id: "review-status", class: "muted" }, r._review ? `marked ${r._review}` : "not reviewed"),
      h("button", { id: "keep", class: `keep ${r._review === "keep" ? "on" : ""}`, onclick: () => mark("keep") }, "keep (a)"),
      h("button", { id: "drop", class: `drop ${r._review === "drop" ? "on" : ""}`, onclick: () => mark("drop") }, "drop (d)")] : []);
  const body = r._kind === "record" ? recordBody(r) : rejectBody(r);
  app.replaceChildren(h("div", { id: "record", "data-key": r.key, "data-row": r._row }, bar, body));
}

function recordBody(r) {
  const resp = r.response;
  const flagged = {};
  for (const t of r._teachers) if (t.critique.first_wrong_step) (flagged[t.critique.first_wrong_step] ||= []).push(t.teacher);
  const steps = h("ol", { class: "steps", id: "steps" }, r._steps.map((s) => {
    const labelled = resp.first_error_step === s.number;
    const marks = h("span", { class: "marks" }, labelled ? pill("label: first error", "mark-label") : null,
      (flagged[s.number] || []).map((t) => pill(`${t}: first wrong`, "mark-teacher")));
    return h("li", { class: `${labelled ? "labelled" : ""} ${flagged[s.number] ? "flagged" : ""}`, "data-step": s.number },
      h("span", { class: "n" }, s.number), h("span", {}, s.text), marks);
  }));
  const labels = h("table", { class: "kv" }, [
    ["problem", r.problem.id], ["gold answer", r.problem.answer], ["response source", `${resp.source} (sample ${resp.sample})`],
    ["final answer", resp.final_answer], ["final correct", resp.final_correct], ["process correct", resp.process_correct],
    ["first error step (label)", resp.first_error_step], ["error kind", resp.error_kind], ["label source", resp.label_source],
    ["reference used", r.reference], ["verdict agrees", r.agrees], ["step agrees", r.step_agrees], ["gold agrees", r.gold_agrees],
    ["finish reason", r.finish_reason], ["attempts", r.attempts], ["key", r.key],
  ].map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, show(v)))));
  const critiques = h("div", { class: "critiques", id: "critiques" }, r._teachers.map((t) => h("section", { class: "card", "data-teacher": t.teacher },
    h("h3", {}, t.teacher, " ", pill(t.critique.verdict, t.critique.verdict), " ", agreePill(t.agrees, r.reference)),
    h("p", { class: "muted" }, `first wrong step: ${t.critique.first_wrong_step ?? "none"}; corrected answer: ${t.critique.corrected_answer ?? "–"}; `,
      `tokens ${fmt(t.usage?.prompt_tokens)} / ${fmt(t.usage?.completion_tokens)}, $${(t.usage?.cost ?? 0).toFixed(5)}`,
      t.row !== r._row ? [" · ", h("a", { href: `#/record/${t.row}?${current.query}` }, "open")] : ""),
    h("pre", {}, t.critique.analysis))));
  return [
    h("div", { class: "two" },
      h("section", { class: "card" }, h("h2", {}, "Question"), h("p", { class: "question" }, r.problem.question),
        h("h2", {}, "Response"), steps),
      h("section", { class: "card" }, h("h2", {}, "Labels"), labels)),
    h("h2", {}, "Critiques"), critiques,
  ];
}

function rejectBody(r) {
  const info = h("table", { class: "kv" }, [["problem", r.problem_id], ["stage", r.stage], ["reason", r.reason], ["detail", r.detail],
    ["attempts", r.attempts], ["usage", r.usage], ["key", r.key]].map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, show(v)))));
  return h("div", { class: "two" }, h("section", { class: "card" }, h("h2", {}, "Rejected"), info,
    r.response ? [h("h2", {}, "Response"), h("pre", { class: "raw" }, r.response)] : null),
    h("section", { class: "card" }, h("h2", {}, "Raw output"), h("pre", { class: "raw", id: "raw" }, r.raw ?? "(none)")));
}

async function mark(decision) {
  if (!current || current.record._kind !== "record") return;
  await api("/api/review", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: current.record.key, decision }) });
  summaryCache = null;
  current.record._review = decision;
  document.getElementById("review-status").textContent = `marked ${decision}`;
  document.getElementById("keep").classList.toggle("on", decision === "keep");
  document.getElementById("drop").classList.toggle("on", decision === "drop");
}

// ---------- keys ----------

document.addEventListener("keydown", (e) => {
  if (e.target.matches("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  const path = location.hash.slice(1).split("?")[0];
  if (e.key === "/") { const q = document.getElementById("f-q"); if (q) { e.preventDefault(); q.focus(); } else location.hash = "#/records"; return; }
  if (path === "/records") {
    if (e.key === "j" || e.key === "ArrowDown") { listState.selected = Math.min(listState.selected + 1, listState.rows.length - 1); highlight(); e.preventDefault(); }
    else if (e.key === "k" || e.key === "ArrowUp") { listState.selected = Math.max(listState.selected - 1, 0); highlight(); e.preventDefault(); }
    else if (e.key === "Enter" || e.key === "o") openRow(listState.selected);
    else if (e.key === "ArrowRight" || e.key === "n") document.getElementById("next-page")?.click();
    else if (e.key === "ArrowLeft" || e.key === "p") document.getElementById("prev-page")?.click();
  } else if (path.startsWith("/record/")) {
    if (["ArrowRight", "j", "n"].includes(e.key)) document.getElementById("next-record")?.click();
    else if (["ArrowLeft", "k", "p"].includes(e.key)) document.getElementById("prev-record")?.click();
    else if (e.key === "a") mark("keep");
    else if (e.key === "d") mark("drop");
    else if (e.key === "Escape" || e.key === "u") document.getElementById("back")?.click();
  }
});

window.addEventListener("hashchange", route);
route();
