// The pipeline status panel: consumer lag, dead letters, each symbol's newest trade.

import { ApiError, getJson, type PipelineStatus } from "./api";
import { age, dateTime, parseIso } from "./time";

const REFRESH_MS = 5000;

function cells(row: HTMLTableRowElement, values: string[]): void {
  for (const value of values) {
    const cell = row.insertCell();
    cell.textContent = value;
  }
}

function fill(table: HTMLTableElement, rows: string[][], empty: string): void {
  const body = table.tBodies[0] as HTMLTableSectionElement;
  body.replaceChildren();
  if (rows.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = table.tHead?.rows[0]?.cells.length ?? 1;
    cell.className = "muted";
    cell.textContent = empty;
    return;
  }
  for (const values of rows) cells(body.insertRow(), values);
}

function render(status: PipelineStatus): void {
  const now = parseIso(status.server_time);
  const since = (iso: string) => `${age(now - parseIso(iso))} ago`;
  const byId = (id: string) => document.getElementById(id) as HTMLElement;
  const lag = status.lag_by_group.reduce((sum, group) => sum + group.lag, 0);
  byId("status-lag-total").textContent = status.lag_by_group.length ? String(lag) : "not reported";
  byId("status-dlq-total").textContent = String(status.dead_letters.total);
  byId("status-dlq-24h").textContent = String(status.dead_letters.last_24h);
  byId("status-updated").textContent = `· ${dateTime(now)}`;
  fill(
    byId("status-lag") as HTMLTableElement,
    status.consumer_lag.map((p) => [p.group_id, p.topic, String(p.partition), String(p.lag), since(p.updated_at)]),
    "no consumer has reported its lag yet",
  );
  fill(
    byId("status-dlq") as HTMLTableElement,
    status.dead_letters.by_reason.map((r) => [r.reason, String(r.total), String(r.last_24h), since(r.newest_at)]),
    "no dead letters",
  );
  fill(
    byId("status-symbols") as HTMLTableElement,
    status.symbols.map((s) => [
      s.symbol,
      dateTime(parseIso(s.last_trade_time)),
      dateTime(parseIso(s.last_ingested_at)),
      age(now - parseIso(s.last_trade_time)),
    ]),
    "no trades stored",
  );
}

export function startStatusPanel(errorBox: HTMLElement): void {
  const refresh = async () => {
    try {
      render(await getJson<PipelineStatus>("/v1/status"));
      errorBox.hidden = true;
    } catch (error) {
      errorBox.textContent = `status unavailable: ${error instanceof ApiError ? error.message : String(error)}`;
      errorBox.hidden = false;
    }
  };
  void refresh();
  window.setInterval(() => void refresh(), REFRESH_MS);
}
