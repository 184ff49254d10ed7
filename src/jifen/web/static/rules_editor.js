// The rule editor (templates/rules_draft.html): one draft seen as a form or as YAML, checked by the server
// as it is typed (POST /console/rules/draft/check), simulated in the background with its progress
// (POST /console/rules/simulations, then polling the run). The textarea is always the draft that is saved:
// form edits are written back into it as YAML by the server. Without this script the page still works
// (the textarea, simulate and publish post the form).
(function () {
  "use strict";
  const form = document.getElementById("draft");
  if (!form) return;
  const { labels: L, layers: LAYERS, caps: CAPS } = JSON.parse(document.getElementById("editor-labels").textContent);
  const csrf = form.dataset.csrf;
  const lang = form.dataset.lang;
  const textarea = form.querySelector("textarea[name=text]");
  const gutter = document.getElementById("gutter");
  const formView = document.getElementById("form-view");
  const yamlView = document.getElementById("yaml-view");
  const problemsList = document.getElementById("problems");
  const state = document.getElementById("check-state");
  const numbers = new Intl.NumberFormat(lang);
  const DEBOUNCE_MS = 350;

  let doc = null; // the draft as data (null while the YAML does not parse)
  let problems = [];
  let view = "yaml";
  let seq = 0; // answers to older checks are dropped
  let timer = null;
  let inFlight = null;

  const el = (tag, attrs = {}, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  };
  const fmt = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => values[k]);

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({}));
    return { status: r.status, answer: answer.error ? answer.error : answer };
  }

  // --- checking -------------------------------------------------------------------------------------
  function schedule(body) {
    clearTimeout(timer);
    state.textContent = L.checking;
    timer = setTimeout(() => { timer = null; inFlight = check(body()); }, DEBOUNCE_MS);
  }

  async function check(body) {
    const mine = ++seq;
    const { status, answer } = await post("/console/rules/draft/check", body);
    if (mine !== seq) return;
    if (status !== 200 && !answer.errors) { // (a refusal: expired page, …)
      problems = [{ path: "", line: null, message: answer.message || String(status) }];
    } else {
      problems = answer.errors || [];
      if ("doc" in body) textarea.value = answer.text;
      else doc = answer.doc && typeof answer.doc === "object" ? answer.doc : null;
    }
    showProblems();
  }

  async function flush() { // the last edit checked (and written into the textarea) before a submit
    if (timer) { clearTimeout(timer); timer = null; inFlight = check(view === "form" ? { doc } : { text: textarea.value }); }
    if (inFlight) await inFlight;
  }

  function showProblems() {
    state.textContent = problems.length ? "" : L.check_ok;
    for (const old of formView.querySelectorAll(".field-error")) old.remove();
    for (const marked of formView.querySelectorAll(".invalid")) marked.classList.remove("invalid");
    const unplaced = [];
    for (const p of problems) {
      const target = view === "form" ? fieldFor(p.path) : null;
      if (!target) { unplaced.push(p); continue; }
      target.classList.add("invalid");
      target.closest("label, .group, .rule-head, section")?.append(el("span", { class: "field-error", "data-for": p.path, text: p.message }));
    }
    // Beside the field in the form; in the YAML view (and for what no field shows) listed with its line.
    problemsList.replaceChildren(...unplaced.map((p) => el("li", { "data-for": p.path, "data-line": p.line },
      (p.line ? `${fmt(L.yaml_line, { n: p.line })} · ` : "") + (p.path ? `${p.path}: ` : "") + p.message)));
    drawGutter();
  }

  function fieldFor(path) { // the field of a path, else the nearest one above it (rules.0.award.fixed → award)
    const parts = path ? path.split(".") : [];
    for (let n = parts.length; n > 0; n--) {
      const found = formView.querySelector(`[data-path="${CSS.escape(parts.slice(0, n).join("."))}"]`);
      if (found) return found;
    }
    return null;
  }

  function drawGutter() {
    const bad = new Set(problems.map((p) => p.line).filter(Boolean));
    const count = textarea.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: count }, (_, i) =>
      el("span", { class: bad.has(i + 1) ? "bad" : null, title: bad.has(i + 1) ? problems.filter((p) => p.line === i + 1).map((p) => p.message).join("\n") : null, text: `${i + 1}\n` })));
    gutter.scrollTop = textarea.scrollTop;
  }

  // --- the form -------------------------------------------------------------------------------------
  const AWARDS = ["fixed", "per_yuan", "multiplier", "tier"];
  const awardKind = (a) => (a && a.multiplier === "tier" ? "tier" : AWARDS.find((k) => a && a[k] !== undefined && a[k] !== null) || "fixed");

  function setAt(path, value) {
    const parts = path.split(".");
    let o = doc;
    for (const p of parts.slice(0, -1)) {
      if (o[p] === undefined || o[p] === null) o[p] = {};
      o = o[p];
    }
    const last = parts[parts.length - 1];
    if (value === undefined) delete o[last]; else o[last] = value;
  }
  const getAt = (path) => path.split(".").reduce((o, p) => (o == null ? undefined : o[p]), doc);

  function parse(kind, raw) {
    if (kind === "items") { const items = raw.split(/[,，、]/).map((x) => x.trim()).filter(Boolean); return items.length ? items : undefined; }
    if (kind === "list") { const items = raw.split(/[,，\s]+/).filter(Boolean); return items.length ? items : undefined; }
    if (raw.trim() === "") return undefined;
    if (kind === "int" || kind === "number") { const n = Number(raw); return Number.isFinite(n) ? n : raw; }
    return raw;
  }

  function input(path, kind = "text", attrs = {}) {
    const v = getAt(path);
    const shown = v === undefined || v === null ? "" : Array.isArray(v) ? v.join(", ") : String(v);
    const i = el("input", { "data-path": path, "data-kind": kind, value: shown, ...attrs });
    i.addEventListener("input", () => { setAt(path, parse(kind, i.value)); cleanCaps(path); edited(); });
    return i;
  }
  const field = (label, control, cls) => el("label", { class: cls }, el("span", { text: label }), control);

  function select(path, options, current, onChange) {
    const s = el("select", { "data-path": path });
    for (const [value, label] of options) s.append(el("option", { value, text: label, selected: value === current }));
    s.addEventListener("change", () => { onChange(s.value); edited(); });
    return s;
  }

  function cleanCaps(path) { // an emptied caps block leaves the draft
    const m = path.match(/^(rules\.\d+\.caps)\./);
    if (m) { const caps = getAt(m[1]); if (caps && !Object.keys(caps).length) setAt(m[1], undefined); }
  }

  function ruleCard(rule, i) {
    const p = `rules.${i}`;
    const kind = awardKind(rule.award);
    const award = rule.award || {};
    const amount = el("input", { size: 8, "data-path": `${p}.award.${kind === "tier" ? "multiplier" : kind}`, value: kind === "tier" ? "" : (award[kind] ?? ""), disabled: kind === "tier" });
    amount.addEventListener("input", () => {
      const k = awardKind(rule.award);
      rule.award = rule.award || {};
      if (k !== "tier") { rule.award[k] = parse(k === "fixed" ? "int" : "number", amount.value); edited(); }
    });
    const rounding = select(`${p}.award.rounding`, ["down", "half_up", "up"].map((r) => [r, L[`round_${r}`]]), award.rounding || "down",
      (v) => { rule.award = rule.award || {}; if (v === "down") delete rule.award.rounding; else rule.award.rounding = v; });
    const kindSelect = select(`${p}.award`, AWARDS.map((k) => [k, L[`award_${k}`]]), kind, (k) => {
      const keep = rule.award && rule.award.rounding ? { rounding: rule.award.rounding } : {};
      const value = amount.value.trim() === "" ? undefined : parse(k === "fixed" ? "int" : "number", amount.value);
      rule.award = k === "tier" ? { multiplier: "tier", ...keep } : { [k]: value, ...keep };
      if (k === "tier" && rule.layer !== "tier") rule.layer = "tier";
      renderForm();
    });
    const remove = el("button", { type: "button", class: "link", text: L.remove });
    remove.addEventListener("click", () => { doc.rules.splice(i, 1); renderForm(); edited(); });
    const enabled = el("input", { type: "checkbox", "data-path": `${p}.enabled`, checked: rule.enabled !== false });
    enabled.addEventListener("change", () => { setAt(`${p}.enabled`, enabled.checked ? undefined : false); edited(); });
    const budgetNames = Object.keys(doc.budgets || {});
    const budget = select(`${p}.budget`, [["", "—"], ...budgetNames.map((b) => [b, b])], rule.budget || "",
      (v) => setAt(`${p}.budget`, v || undefined));
    return el("fieldset", { class: "rule", "data-path": p },
      el("div", { class: "rule-head" }, el("b", { text: rule.name || rule.code || L.rule }), el("span", { class: "mono muted", text: ` ${rule.code || ""}` }), remove),
      el("div", { class: "row" },
        field(L.rule_code, input(`${p}.code`, "text", { class: "mono", size: 18 })),
        field(L.rule_name, input(`${p}.name`, "text", { size: 22 })),
        field(L.layer, select(`${p}.layer`, Object.entries(LAYERS), rule.layer || "base", (v) => setAt(`${p}.layer`, v === "base" ? undefined : v))),
        field(L.priority, input(`${p}.priority`, "int", { size: 4 })),
        field(L.enabled, enabled, "check")),
      el("div", { class: "row" },
        field(L.events, input(`${p}.events`, "list", { class: "mono", size: 22, placeholder: L.events_hint })),
        field(L.condition, input(`${p}.condition`, "text", { class: "mono", size: 56, placeholder: "true" }), "wide")),
      el("div", { class: "row" },
        field(L.award, kindSelect), field("\u00a0", amount), field(L.rounding, rounding),
        el("div", { class: "group", "data-path": `${p}.caps` }, el("span", { class: "caption", text: L.caps }),
          el("div", { class: "row" }, ...["day", "week", "month", "lifetime"].map((c) => field(CAPS[c], input(`${p}.caps.${c}`, "int", { size: 6 }))))),
        field(L.rule_budget, budget)),
      el("div", { class: "row" },
        field(L.starts_at, input(`${p}.starts_at`, "text", { class: "mono", size: 26, placeholder: "YYYY-MM-DDTHH:MM:SS+08:00" })),
        field(L.ends_at, input(`${p}.ends_at`, "text", { class: "mono", size: 26, placeholder: "YYYY-MM-DDTHH:MM:SS+08:00" }))));
  }

  function budgetRows() {
    const rows = Object.entries(doc.budgets || {}).map(([name, amount], i) => {
      const n = el("input", { value: name, "data-path": `budgets.${name}`, size: 16, class: "mono" });
      const a = el("input", { value: amount, size: 10 });
      const update = () => {
        const entries = Object.entries(doc.budgets || {});
        entries[i] = [n.value.trim(), parse("int", a.value)];
        doc.budgets = Object.fromEntries(entries.filter(([k]) => k));
        edited();
      };
      n.addEventListener("change", () => { update(); renderForm(); });
      a.addEventListener("input", update);
      return el("div", { class: "row" }, field(L.budget_name, n), field(L.budget_amount, a));
    });
    const add = el("button", { type: "button", class: "link", text: `+ ${L.add_budget}` });
    add.addEventListener("click", () => {
      doc.budgets = doc.budgets || {};
      let n = 1; while (`budget_${n}` in doc.budgets) n++;
      doc.budgets[`budget_${n}`] = 0; renderForm(); edited();
    });
    return el("section", { class: "budgets", "data-path": "budgets" }, el("h3", { text: L.budgets }), ...rows, add);
  }

  // The tier ladder travels with the rules (a version, its effective date and announcement): its levels here,
  // the rest of it (basis, window, grace, score, discounts) in the YAML.
  function tierRows() {
    const levels = doc.tiers && Array.isArray(doc.tiers.levels) ? doc.tiers.levels : [];
    const rows = levels.map((level, i) => {
      const p = `tiers.levels.${i}`;
      const remove = el("button", { type: "button", class: "link", text: L.remove });
      remove.addEventListener("click", () => { levels.splice(i, 1); if (!levels.length) delete doc.tiers; renderForm(); edited(); });
      return el("div", { class: "row tier", "data-path": p },
        field(L.tier_code, input(`${p}.code`, "text", { class: "mono", size: 12 })),
        field(L.tier_name, input(`${p}.name`, "text", { size: 12 })),
        field(L.threshold, input(`${p}.threshold`, "number", { size: 9 })),
        field(L.retain, input(`${p}.retain`, "number", { size: 9 })),
        field(L.multiplier, input(`${p}.earn_multiplier`, "number", { size: 5, placeholder: "1" })),
        field(L.benefits, input(`${p}.benefits`, "items", { size: 30 }), "wide"),
        remove);
    });
    const add = el("button", { type: "button", class: "link", text: `+ ${L.add_tier}` });
    add.addEventListener("click", () => {
      doc.tiers = doc.tiers || { levels: [] };
      doc.tiers.levels = doc.tiers.levels || [];
      const last = doc.tiers.levels[doc.tiers.levels.length - 1];
      let n = doc.tiers.levels.length + 1; while (doc.tiers.levels.some((lv) => lv.code === `tier_${n}`)) n++;
      doc.tiers.levels.push({ code: `tier_${n}`, name: `tier_${n}`, threshold: last ? Number(last.threshold) * 2 || 1000 : 0 });
      renderForm(); edited();
    });
    return el("section", { class: "tiers", "data-path": "tiers" }, el("h3", { text: L.tiers }), ...rows,
      el("div", { class: "row" }, add), el("p", { class: "muted", text: L.tier_form_help }));
  }

  function renderForm() {
    if (!doc) { formView.replaceChildren(el("p", { class: "error", text: L.yaml_broken })); return; }
    doc.rules = Array.isArray(doc.rules) ? doc.rules : [];
    const stacking = select("multipliers", [["multiply", L.stack_multiply], ["add", L.stack_add]], doc.multipliers || "multiply",
      (v) => setAt("multipliers", v === "multiply" ? undefined : v));
    const add = el("button", { type: "button", text: `+ ${L.add_rule}` });
    add.addEventListener("click", () => {
      let n = doc.rules.length + 1; while (doc.rules.some((r) => r.code === `rule_${n}`)) n++;
      doc.rules.push({ code: `rule_${n}`, events: ["purchase"], award: { fixed: 10 } });
      renderForm(); edited();
    });
    formView.replaceChildren(
      el("section", { "data-path": "" }, el("div", { class: "row" }, field(L.stacking, stacking))),
      ...(doc.rules.length ? doc.rules.map(ruleCard) : [el("p", { class: "muted", text: L.no_rules_yet })]),
      el("div", { class: "row" }, add),
      budgetRows(),
      tierRows(),
      el("p", { class: "muted", text: L.more_fields }));
    showProblems();
  }

  function edited() { schedule(() => ({ doc })); }

  // --- switching views --------------------------------------------------------------------------------
  async function show(which) {
    await flush();
    view = which;
    formView.hidden = which !== "form";
    yamlView.hidden = which !== "yaml";
    for (const b of form.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.view === which);
    if (which === "form") renderForm(); else showProblems();
  }

  // --- simulation ------------------------------------------------------------------------------------
  const card = document.getElementById("simulation");
  const bar = card.querySelector("progress");
  const barText = card.querySelector("#sim-progress span");
  const result = document.getElementById("sim-result");

  async function simulate() {
    await flush();
    card.hidden = false;
    result.replaceChildren();
    bar.removeAttribute("value"); // (indeterminate while the events are counted)
    barText.textContent = L.sim_counting;
    document.getElementById("sim-progress").hidden = false;
    const { status, answer } = await post("/console/rules/simulations", { text: textarea.value });
    if (status !== 202) { barText.textContent = fmt(L.sim_failed, { error: answer.message || status }); return; }
    let run = answer;
    while (run.state === "running") {
      showProgress(run);
      await new Promise((r) => setTimeout(r, 400));
      const r = await fetch(answer.url, { credentials: "same-origin" });
      run = await r.json();
      if (run.error && run.error.code) { run = { state: "failed", error: run.error.message }; }
    }
    if (run.state === "failed") { barText.textContent = fmt(L.sim_failed, { error: run.error }); return; }
    showProgress(run);
    showReport(run.report);
  }

  function showProgress(run) {
    if (run.total === null || run.total === undefined) return;
    bar.max = Math.max(run.total, 1);
    bar.value = run.done;
    barText.textContent = fmt(L.sim_progress, { done: numbers.format(run.done), total: numbers.format(run.total) });
  }

  const signed = (n) => (n > 0 ? "+" : "") + numbers.format(n);
  const td = (text, cls = "num") => el("td", { class: cls, text });

  function showReport(report) {
    const names = report.names || {};
    const summary = el("table", { class: "sim-summary" },
      el("thead", {}, el("tr", {}, el("th"), el("th", { class: "num", text: L.baseline }), el("th", { class: "num", text: L.draft }), el("th", { class: "num", text: L.difference }))),
      el("tbody", {},
        el("tr", {}, td(L.points, ""), td(numbers.format(report.points.baseline)), td(numbers.format(report.points.draft)), td(signed(report.points.difference))),
        el("tr", {}, td(L.liability, ""), td(report.liability_yuan.baseline), td(report.liability_yuan.draft), td(report.liability_yuan.difference))));
    const rows = report.rules.map((r) => el("tr", { class: r.difference ? "changed" : null, "data-rule": r.rule },
      el("td", {}, el("span", { text: names[r.rule] || "" }), names[r.rule] ? el("br") : null, el("span", { class: "mono muted", text: r.rule })),
      td(numbers.format(r.baseline)), td(numbers.format(r.draft)), td(signed(r.difference)),
      td(r.percent === null ? L.new_rule_pct : `${r.percent > 0 ? "+" : ""}${r.percent}%`), td(numbers.format(r.members_affected))));
    const byRule = el("table", { class: "sim-rules" },
      el("thead", {}, el("tr", {}, ...[L.rule, L.baseline, L.draft, L.difference, L.change_pct, L.members_affected]
        .map((h, i) => el("th", { class: i ? "num" : null, text: h })))),
      el("tbody", {}, ...rows));
    const errors = report.rule_errors.length ? el("div", {}, el("h3", { text: L.rule_errors }),
      el("ul", {}, ...report.rule_errors.map((e) => el("li", {}, el("span", { class: "mono", text: e.rule }), ` · ${e.error} · ${numbers.format(e.events)}`)))) : null;
    result.replaceChildren(
      el("p", { class: "muted", text: fmt(L.sim_events, { events: numbers.format(report.events), members: numbers.format(report.members_affected) }) }),
      summary, byRule, ...(errors ? [errors] : []));
  }

  // --- wiring ------------------------------------------------------------------------------------------
  form.querySelector(".tabs").hidden = false;
  gutter.hidden = false;
  for (const b of form.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.view));
  textarea.addEventListener("input", () => { drawGutter(); schedule(() => ({ text: textarea.value })); });
  textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
  const simButton = document.getElementById("simulate");
  if (simButton) simButton.addEventListener("click", (e) => { e.preventDefault(); simulate(); });
  const publishButton = document.getElementById("publish");
  if (publishButton) publishButton.addEventListener("click", async (e) => {
    e.preventDefault();
    await flush(); // the textarea holds the last edit of the form
    form.append(el("input", { type: "hidden", name: "action", value: "publish" }));
    form.submit();
  });
  inFlight = check({ text: textarea.value });
  show("form");
})();
