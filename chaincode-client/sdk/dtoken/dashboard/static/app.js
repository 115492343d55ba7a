// The dashboard page: renders the state the server embedded, then follows /api/events.
// Data is written with textContent only (never parsed as HTML).
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function badge(text, cls) {
  return el("span", text, "badge " + (cls || text));
}

function fill(table, header, rows, emptyText) {
  table.replaceChildren();
  const head = el("tr");
  header.forEach(([label, cls]) => head.appendChild(el("th", label, cls)));
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  if (!rows.length) {
    const tr = body.appendChild(el("tr"));
    const td = tr.appendChild(el("td", emptyText, "empty"));
    td.colSpan = header.length;
    return;
  }
  rows.forEach((cells) => {
    const tr = body.appendChild(el("tr"));
    cells.forEach((cell, i) => {
      const cls = header[i][1];
      const td = tr.appendChild(el("td", null, cls));
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell ?? "";
    });
  });
}

const money = (m) => (m && m.text) || "";
const short = (id) => (id && id.length > 14 ? id.slice(0, 12) + "…" : id || "");

function renderIdentity(me) {
  const kind = me.kind === "regulator" ? "regulator (observer and auditor)" : "bank";
  document.getElementById("who").textContent = me.org + " · " + kind;
  document.getElementById("identity").textContent =
    me.msp_id + " as " + me.identity + " · channel " + me.channel + " · chaincode " +
    me.chaincode + " · network " + me.network;
  if (me.kind === "regulator") {
    document.getElementById("incoming-title").textContent = "Transfers waiting for a payee bank";
    document.getElementById("outgoing-title").textContent = "Transfers not final at the payer bank";
  } else {
    document.getElementById("incoming-title").textContent = "Incoming: waiting for our decision";
    document.getElementById("outgoing-title").textContent = "Outgoing: not final yet";
  }
}

function renderSupply(state) {
  const box = document.getElementById("supply");
  box.replaceChildren();
  const regulator = state.me.kind === "regulator";
  if (!state.supply.length) box.appendChild(el("div", "no token", "muted"));
  state.supply.forEach((s) => {
    const card = box.appendChild(el("div", null, "token"));
    card.appendChild(el("div", (regulator ? s.bank + " " : "") + s.currency + " token", "muted"));
    card.appendChild(el("div", money(s.supply), "amount"));
    const kinds = Object.entries(s.by_kind || {}).map(([k, v]) => k + " " + money(v));
    card.appendChild(el("div", kinds.join(" · "), "kinds"));
  });
}

function renderAccounts(state) {
  const regulator = state.me.kind === "regulator";
  const header = [["Account", "id"], ["Currency"], ["Owner"], ["Status"], ["Regulator's hold"],
                  ["Balance", "num"], ["Opened"]];
  if (regulator) header.unshift(["Bank"]);
  const rows = state.accounts.map((a) => {
    const hold = !a.hold ? "" : a.hold.frozen ? badge("frozen")
      : badge("holds " + money(a.hold.held), "pending");
    const row = [a.account_id, a.currency, a.owner_ref, badge(a.status), hold, money(a.balance),
                 (a.opened_at || "").replace("T", " ").slice(0, 19)];
    if (regulator) row.unshift(a.bank);
    return row;
  });
  fill(document.getElementById("accounts"), header, rows, "no accounts");
  const shown = state.accounts.length, total = state.accounts_total;
  document.getElementById("accounts-count").textContent =
    total > shown ? "(newest " + shown + " of " + total + ")" : "(" + total + ")";
}

function renderTransfers(id, transfers) {
  const header = [["Transfer", "id"], ["From → to"], ["Payee account", "id"],
                  ["Amount", "num"], ["Status"], ["Hash lock (PvP leg)"], ["Remittance"]];
  // A PvP leg: taken only with the preimage of its lock, before its deadline.
  const rows = transfers.map((t) => [
    short(t.transfer_id), t.payer_bank + " → " + t.payee_bank, short(t.payee_account),
    money(t.amount), badge(t.status),
    t.lock ? short(t.lock) + " until " + t.expires_at : "", t.remittance,
  ]);
  fill(document.getElementById(id), header, rows, "nothing waiting");
}

function renderObligations(state) {
  // Cap: the creditor's exposure cap on the debtor; headroom: what it may still accept.
  const header = [["Debtor"], ["Creditor"], ["Currency"], ["Accepted", "num"],
                  ["Settled", "num"], ["Owed", "num"], ["Cap", "num"], ["Headroom", "num"],
                  ["Net position"]];
  const rows = [];
  state.obligations.forEach((o) => {
    const [a, b] = o.banks;
    o.obligations.forEach((x) => {
      const net = (o.net || {})[x.currency];
      let netText = "";
      if (net) {
        netText = net.minor === 0 ? "settled (net 0)" :
          (net.minor > 0 ? a + " owes " + b : b + " owes " + a) + " " +
          net.text.replace(/^-/, "");
      }
      const headroom = x.cap ? (x.headroom && x.headroom.minor === 0
        ? badge("full " + money(x.headroom), "pending") : money(x.headroom)) : "no cap";
      rows.push([x.debtor, x.creditor, x.currency, money(x.accepted), money(x.settled),
                 money(x.owed), x.cap ? money(x.cap) : "no cap", headroom, netText]);
    });
  });
  fill(document.getElementById("obligations"), header, rows, "no obligations");
}

function renderEscrows(state) {
  const header = [["Escrow", "id"], ["Payer bank"], ["Payee"], ["Amount", "num"],
                  ["State"], ["Deadline"], ["Attester"], ["Anomalies"]];
  const kinds = {held: "pending", due: "pending", released: "pending", paid: "",
                 refunded: "pending", disputed: "invalid"};
  // a party the terms name whose key is not the one this bank registered under that name
  const unverified = (e) => (e.parties || []).filter((p) => p.here !== "match")
    .map((p) => p.role + " " + p.name + ": " + p.here);
  const rows = (state.escrows || []).map((e) => [
    short(e.escrow_id), e.payer_bank, e.payee_bank + "/" + short(e.payee_account),
    money(e.amount), badge(e.state, kinds[e.state]), e.deadline + " (" + e.on_deadline + ")",
    e.attester || "-",
    [...(e.anomalies || []), ...unverified(e)].length
      ? badge([...(e.anomalies || []), ...unverified(e)].join(", "), "invalid") : ""]);
  fill(document.getElementById("escrows"), header, rows, "no escrow");
}

function renderRequests(state) {
  const header = [["Request", "id"], ["Asked by"], ["To pay"], ["Amount", "num"],
                  ["Invoice"], ["Due"], ["Status"]];
  const rows = (state.requests || []).map((r) => [
    short(r.request_id), r.payee_bank, r.payer_bank + "/" + short(r.payer_account),
    money(r.amount), r.invoice_ref, r.due,
    badge(r.status + (r.payment_status ? " (" + r.payment_status + ")" : ""),
          r.status === "paid" ? "" : (r.status === "mismatched" ? "invalid" : "pending"))]);
  fill(document.getElementById("requests"), header, rows, "no payment request");
}

function renderBlocks(state) {
  const header = [["Block", "num"], ["Transactions"], ["Validation"], ["Events"]];
  const rows = state.blocks.map((b) => {
    const invalid = b.transactions.filter((t) => !t.valid).map((t) => t.code);
    const events = b.transactions.flatMap((t) => t.events);
    return [String(b.number), String(b.transactions.length),
            invalid.length ? badge(invalid.join(", "), "invalid") : badge("VALID"),
            events.join(", ")];
  });
  fill(document.getElementById("blocks"), header, rows, "no block yet");
}

function renderEvents(state) {
  const header = [["Block", "num"], ["Event"], ["Concerns"], ["Transaction", "id"]];
  const rows = state.events.map((e) => {
    const p = e.payload || {};
    const concerns = p.payee_banks ? "payee " + p.payee_banks.join(", ") :
      (p.payer_bank ? "payer " + p.payer_bank : "");
    return [String(e.block), e.name, concerns, short(e.tx_id)];
  });
  fill(document.getElementById("events"), header, rows, "no event yet");
}

function render(state) {
  if (!state || !state.me) return;
  renderIdentity(state.me);
  renderSupply(state);
  renderAccounts(state);
  renderTransfers("incoming", state.incoming || []);
  renderTransfers("outgoing", state.outgoing || []);
  renderEscrows(state);
  renderRequests(state);
  renderObligations(state);
  renderBlocks(state);
  renderEvents(state);
  document.getElementById("height").textContent = String(state.height);
  document.getElementById("updated").textContent =
    (state.updated_at || "").replace("T", " ").replace("+00:00", " UTC");
  const errors = document.getElementById("errors");
  errors.hidden = !(state.errors && state.errors.length);
  errors.textContent = (state.errors || []).join(" · ");
  document.body.dataset.version = String(state.version);
}

function live(on) {
  document.getElementById("live").className = "dot " + (on ? "on" : "off");
  document.getElementById("live-text").textContent = on ? "live" : "reconnecting";
}

render(JSON.parse(document.getElementById("initial-state").textContent));
if (window.EventSource) {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => live(true));
  source.addEventListener("error", () => live(false));
  source.addEventListener("state", (message) => render(JSON.parse(message.data)));
}
