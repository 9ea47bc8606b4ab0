// The page: live tiles, the chart, the query forms, the export link and the status panel.

import { getJson, type SymbolSummary } from "./api";
import { PriceChart } from "./chart";
import { type ConnectionState, PriceStream } from "./feed";
import { fillDefaults, wireExport, wireMinuteRange, wirePriceAt } from "./forms";
import { startStatusPanel } from "./status";
import { Tiles } from "./tiles";
import { ServerClock } from "./time";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} missing from the page`);
  return found as T;
}

const symbolSelects = () => [...document.querySelectorAll<HTMLSelectElement>("select.symbol-select, #chart-symbol")];

/** Adds a symbol to every symbol menu (in order); returns whether it was new. */
function addSymbol(symbol: string): boolean {
  let added = false;
  for (const select of symbolSelects()) {
    const options = [...select.options];
    if (options.some((option) => option.value === symbol)) continue;
    const option = new Option(symbol, symbol);
    select.insertBefore(option, options.find((other) => other.value > symbol) ?? null);
    added = true;
  }
  return added;
}

function showConnection(badge: HTMLElement, tiles: Tiles, state: ConnectionState): void {
  badge.dataset.state = state.kind;
  tiles.setOffline(state.kind === "reconnecting" || state.kind === "feed-error");
  switch (state.kind) {
    case "connecting":
      badge.textContent = "connecting…";
      break;
    case "live":
      badge.textContent = "live";
      break;
    case "feed-error":
      badge.textContent = `stale: ${state.error}`;
      break;
    case "reconnecting":
      badge.textContent = `disconnected (${state.why}): reconnecting in ${Math.ceil(state.inMs / 1000)} s (attempt ${state.attempt})`;
      break;
  }
}

function main(): void {
  const clock = new ServerClock();
  fillDefaults(Date.now());

  const chartSymbol = element<HTMLSelectElement>("chart-symbol");
  const chartInterval = element<HTMLSelectElement>("chart-interval");
  const chartRange = element<HTMLSelectElement>("chart-range");
  const chart = new PriceChart(
    element("chart"),
    element("chart-card"),
    element("chart-caption"),
    element("chart-ohlc"),
    element("chart-error"),
  );
  const loadChart = () => {
    if (!chartSymbol.value) return;
    void chart.load({
      symbol: chartSymbol.value,
      interval: chartInterval.value,
      rangeSeconds: Number(chartRange.value),
    });
  };
  for (const control of [chartSymbol, chartInterval, chartRange]) control.addEventListener("change", loadChart);
  element("chart-fit").addEventListener("click", () => chart.fit());

  const onNewSymbol = (symbol: string) => {
    const first = !chartSymbol.value;
    if (addSymbol(symbol) && first) loadChart();
  };
  const tiles = new Tiles(element("tiles"), clock, onNewSymbol);
  const badge = element("connection");
  new PriceStream("/v1/stream/prices", {
    prices(prices, status) {
      clock.learn(status.server_time);
      tiles.update(prices);
      for (const latest of prices) chart.tradeArrived(latest.symbol);
    },
    status(status) {
      clock.learn(status.server_time);
    },
    connection: (state) => showConnection(badge, tiles, state),
  }).start();

  // The symbols with data, for the menus, before the first live event.
  getJson<{ symbols: SymbolSummary[] }>("/v1/symbols")
    .then((answer) => {
      for (const summary of answer.symbols) onNewSymbol(summary.symbol);
    })
    .catch(() => {
      // The live feed adds symbols as they come; the status panel shows what is wrong.
    });

  wirePriceAt(element<HTMLFormElement>("price-at-form"));
  wireMinuteRange(element<HTMLFormElement>("minmax-form"));
  wireExport(element<HTMLFormElement>("export-form"), element<HTMLAnchorElement>("csv-link"), element("export-error"));
  startStatusPanel(element("status-error"));
}

main();
