// The wxgate console. Everything pushed is hostile: it is only ever written as text
// (textContent), never as HTML. Every state change sends the session's CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
let lastSeq = 0;
const perAccount = new Map();
const MAX_ROWS = 200;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function utc(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

async function call(method, path, body) {
  const options = { method, headers: { "X-Csrf-Token": csrf }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    window.location.href = "/console/sign-in";
    throw new Error("signed out");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || ("HTTP " + response.status));
  return answer;
}

function accountTable(name) {
  if (perAccount.has(name)) return perAccount.get(name);
  const box = el("div", null, "account");
  box.id = "recent-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  box.appendChild(el("h3", name));
  const table = el("table");
  const head = row(["time (UTC)", "kind", "type", "outcome", "latency", "reason", "content"].map((h) => el("th", h)));
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  box.appendChild(table);
  document.getElementById("recent").appendChild(box);
  perAccount.set(name, body);
  return body;
}

function showEntry(entry) {
  const body = accountTable(entry.account || "(unknown)");
  const outcome = el("td", entry.outcome, entry.outcome === "ok" || entry.outcome === "duplicate" ? "outcome-ok" : "outcome-bad");
  const tr = row([
    utc(entry.at_ms), entry.kind, entry.msg_type, outcome,
    entry.latency_ms.toFixed(1) + " ms", entry.reason || "",
    el("td", entry.content || "", "content"),
  ]);
  tr.dataset.seq = entry.seq;
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
}

async function pollRecent() {
  const unmask = document.getElementById("unmask").checked ? "&unmask=1" : "";
  try {
    const answer = await call("GET", "/console/api/recent?after=" + lastSeq + unmask);
    for (const entry of answer.entries) {
      showEntry(entry);
      lastSeq = Math.max(lastSeq, entry.seq);
    }
    document.getElementById("live").textContent = "live, updated " + utc(Date.now());
  } catch (error) {
    document.getElementById("live").textContent = "not updating: " + error.message;
  }
}

function inboxRows(id, records, action) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  for (const record of records) {
    const cell = el("td");
    if (action) {
      const button = el("button", "Retry");
      button.type = "button";
      button.className = "retry";
      button.dataset.id = record.id;
      button.addEventListener("click", () => retry(record.id));
      cell.appendChild(button);
    }
    const tr = row([record.id, record.account, utc(record.received_at * 1000), record.msg_type || "",
      el("td", record.content || "", "content"), record.attempts, record.last_error || "", cell]);
    tr.id = "record-" + record.id;
    tr.className = "state-" + record.state;
    body.appendChild(tr);
  }
}

async function refreshInbox() {
  const unmask = document.getElementById("unmask").checked ? "?unmask=1" : "";
  try {
    const answer = await call("GET", "/console/api/inbox" + unmask);
    if (!answer.enabled) {
      document.getElementById("inbox-counts").textContent = "No account forwards: the inbox is off.";
      return;
    }
    const c = answer.counts;
    document.getElementById("inbox-counts").textContent =
      c.pending + " pending, " + c.delivered + " delivered, " + c.dead + " dead";
    inboxRows("dead", answer.records.filter((r) => r.state === "dead"), true);
    inboxRows("pending", answer.records.filter((r) => r.state === "pending"), false);
    inboxRows("delivered", answer.records.filter((r) => r.state === "delivered"), false);
  } catch (error) {
    document.getElementById("inbox-counts").textContent = "inbox: " + error.message;
  }
}

async function retry(id) {
  const result = document.getElementById("inbox-result");
  try {
    await call("POST", "/console/api/inbox/" + encodeURIComponent(id) + "/retry");
    result.textContent = "delivery " + id + " is pending again";
  } catch (error) {
    result.textContent = "retry " + id + ": " + error.message;
  }
  refreshInbox();
}

async function purge() {
  const result = document.getElementById("inbox-result");
  try {
    const answer = await call("POST", "/console/api/inbox/purge", { older_than_s: 0 });
    result.textContent = answer.purged + " records purged";
  } catch (error) {
    result.textContent = "purge: " + error.message;
  }
  refreshInbox();
}

function credentialRows(accounts) {
  const body = document.querySelector("#credentials tbody");
  body.replaceChildren();
  for (const account of accounts) {
    if (typeof account.credentials === "string") {
      body.appendChild(row([account.name, account.credentials, "", "", ""]));
      continue;
    }
    for (const [kind, state] of Object.entries(account.credentials)) {
      body.appendChild(row([account.name, kind, state.cached ? "yes" : "no",
        state.expires_in_s === undefined ? "" : state.expires_in_s + " s", state.fetches_today]));
    }
  }
}

async function refreshOverview() {
  try {
    const answer = await call("GET", "/console/api/overview");
    credentialRows(answer.accounts);
    document.getElementById("config").textContent = JSON.stringify(answer.config, null, 2);
    document.getElementById("version").textContent = "v" + answer.config.version;
    const select = document.getElementById("try-account");
    if (select.options.length === 0) {
      for (const account of answer.config.accounts) {
        select.appendChild(el("option", account.name));
        accountTable(account.name);
      }
    }
  } catch (error) {
    document.getElementById("config").textContent = "overview: " + error.message;
  }
}

async function tryAccount() {
  const out = document.getElementById("try-result");
  out.replaceChildren(el("p", "sending…", "muted"));
  const name = document.getElementById("try-account").value;
  try {
    const answer = await call("POST", "/console/api/try/" + encodeURIComponent(name),
      { text: document.getElementById("try-text").value });
    const verdict = el("p", (answer.ok ? "OK" : "FAILED") + ": HTTP " + answer.status + " in " +
      answer.elapsed_ms.toFixed(1) + " ms", answer.ok ? "ok" : "fail");
    const reply = el("p");
    reply.appendChild(el("strong", "reply: "));
    reply.appendChild(el("span", answer.reply === null ? "(none)" : answer.reply));
    reply.id = "try-reply";
    const list = el("ul");
    for (const check of answer.checks) {
      list.appendChild(el("li", check.status + " " + check.name + ": " + check.detail));
    }
    out.replaceChildren(verdict, reply, list);
  } catch (error) {
    out.replaceChildren(el("p", "try: " + error.message, "fail"));
  }
}

async function signOut() {
  try { await call("POST", "/console/sign-out"); } catch (error) { /* signed out anyway */ }
  window.location.href = "/console/sign-in";
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("unmask").addEventListener("change", () => {
    lastSeq = 0;
    for (const body of perAccount.values()) body.replaceChildren();
    pollRecent();
    refreshInbox();
  });
  document.getElementById("purge").addEventListener("click", purge);
  document.getElementById("try").addEventListener("click", tryAccount);
  document.getElementById("sign-out").addEventListener("click", signOut);
  refreshOverview();
  pollRecent();
  refreshInbox();
  setInterval(pollRecent, 1000);
  setInterval(refreshInbox, 2000);
  setInterval(refreshOverview, 10000);
});
