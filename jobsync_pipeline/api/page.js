// The page for people: sign in with a token, start a saved search, follow a run live (the API's
// event stream, read with fetch so the token travels in a header, never in a URL), read its results.
// Everything the server sends is written as text (textContent), never as markup.
"use strict";

const TOKEN_KEY = "jobsync-token";
const ENDED = ["success", "failed", "cancelled"];
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem(TOKEN_KEY) || "";
let follower = null;      // the AbortController of the stream being read
let followed = null;      // the followed run, as the last event said
let clockOffset = 0;      // server time minus this browser's time, from each event

// a count that stopped at its limit is "at least": 1000+
function found(run) { return run.jobs_found == null ? "" : `${run.jobs_found}${run.jobs_found_capped ? "+" : ""}`; }

function say(text) { $("message").textContent = text || ""; }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    throw new Error((body.error || response.statusText) + (retry && !body.error ? ` (retry in ${retry} s)` : ""));
  }
  return body;
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text == null ? "" : String(text);
  return td;
}

function buttonCell(row, label, className, onClick) {
  const button = document.createElement("button");
  button.textContent = label;
  button.className = className;
  button.addEventListener("click", onClick);
  row.insertCell().append(button);
}

function describe(parameters) {
  return Object.entries(parameters).map(([k, v]) => `${k.replaceAll("_", " ")}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ");
}

async function signIn() {
  try {
    const me = await api("/api/me");
    $("who").textContent = me.email;
    $("login").hidden = true;
    $("signed-in").hidden = false;
    say("");
    await Promise.all([loadSearches(), loadRuns()]);
    const wanted = /^#run=(\d+)$/.exec(location.hash);
    if (wanted) follow(Number(wanted[1]));
  } catch (error) {
    say(`Could not sign in: ${error.message}`);
    $("login").hidden = false;
    $("signed-in").hidden = true;
  }
}

async function loadSearches() {
  const body = $("searches");
  body.replaceChildren();
  for (const search of await api("/api/searches")) {
    const row = body.insertRow();
    row.dataset.searchId = search.id;
    cell(row, search.id);
    cell(row, describe(search.parameters));
    buttonCell(row, "Start", "start", () => start(search.id));
  }
  if (!body.rows.length) cell(body.insertRow(), "No saved searches yet (jobsync searches add).").colSpan = 3;
}

async function loadRuns() {
  const body = $("runs");
  body.replaceChildren();
  for (const run of await api("/api/runs?limit=15")) {
    const row = body.insertRow();
    row.dataset.runId = run.id;
    cell(row, run.id);
    cell(row, run.saved_search_id);
    cell(row, run.source);
    cell(row, run.status).className = "run-status";
    cell(row, found(run)).className = "run-found";
    cell(row, new Date(run.created_at).toLocaleString());
    buttonCell(row, "Follow", "follow", () => follow(run.id));
  }
}

async function start(searchId) {
  try {
    const run = await api(`/api/searches/${searchId}/runs`, { method: "POST", body: JSON.stringify({ client_context: { client: "page" } }) });
    say("");
    follow(run.id);
    loadRuns();
  } catch (error) {
    say(`Could not start search ${searchId}: ${error.message}`);
  }
}

function show(run) {
  followed = run;
  $("follow-none").hidden = true;
  $("follow-run").hidden = false;
  $("run-id").textContent = run.id;
  $("run-source").textContent = run.source;
  $("run-search").textContent = run.saved_search_id;
  $("run-status").textContent = run.status;
  $("run-status").className = `status ${run.status}`;
  $("run-found").textContent = run.jobs_found == null ? "" : `${found(run)} job(s) found`;
  $("run-error").textContent = run.error && run.status !== "success" ? run.error : "";
  $("run-cancel").hidden = ENDED.includes(run.status);
  tick();
  const listed = document.querySelector(`#runs tr[data-run-id="${run.id}"]`);
  if (listed) {
    listed.querySelector(".run-status").textContent = run.status;
    listed.querySelector(".run-found").textContent = found(run);
  }
}

function tick() {
  if (!followed) return;
  const now = Date.now() + clockOffset;
  const at = (text) => (text ? new Date(text).getTime() : null);
  const [created, started, completed] = [at(followed.created_at), at(followed.started_at), at(followed.completed_at)];
  let text = "";
  if (followed.status === "pending") text = `waiting ${seconds(now - created)}`;
  else if (followed.status === "running") text = `running for ${seconds(now - started)}`;
  else if (completed) text = `took ${seconds(completed - (started || created))}`;
  $("run-elapsed").textContent = text;
}

function seconds(ms) { return `${Math.max(0, ms / 1000).toFixed(1)} s`; }

async function follow(runId) {
  if (follower) follower.abort();
  const controller = new AbortController();
  follower = controller;
  history.replaceState(null, "", `#run=${runId}`);
  $("results").hidden = true;
  try {
    const response = await fetch(`/api/runs/${runId}/events`, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.*)$/m.exec(message)?.[1];
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (name === "status" && data) {
          const event = JSON.parse(data);
          clockOffset = new Date(event.server_time).getTime() - Date.now();
          show(event.run);
        } else if (name === "end") {
          if (followed && followed.status === "success") await showResults(followed.id);
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") say(`Could not follow run ${runId}: ${error.message}`);
  }
}

async function showResults(runId) {
  const table = $("results");
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const job of await api(`/api/runs/${runId}/results?limit=25`)) {
    const row = body.insertRow();
    cell(row, job.rank);
    const title = row.insertCell();
    if (/^https?:\/\//.test(job.url || "")) {
      const link = document.createElement("a");
      link.href = job.url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      link.textContent = job.title;
      title.append(link);
    } else title.textContent = job.title;
    cell(row, job.company);
    cell(row, job.location);
    cell(row, job.salary);
    cell(row, job.posted_date);
    cell(row, (job.why || []).join("; "));
  }
  table.hidden = false;
}

$("use-token").addEventListener("click", () => {
  token = $("token").value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  signIn();
});
$("token").addEventListener("keydown", (event) => { if (event.key === "Enter") $("use-token").click(); });
$("sign-out").addEventListener("click", () => {
  if (follower) follower.abort();
  localStorage.removeItem(TOKEN_KEY);
  token = "";
  followed = null;
  $("login").hidden = false;
  $("signed-in").hidden = true;
});
$("refresh-runs").addEventListener("click", () => loadRuns().catch((error) => say(error.message)));
$("run-cancel").addEventListener("click", async () => {
  try { show(await api(`/api/runs/${followed.id}/cancel`, { method: "POST" })); } catch (error) { say(error.message); }
});
setInterval(tick, 200);
if (token) signIn();
