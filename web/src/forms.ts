// The reference tracker's questions, asked of the api: the price at a second, a minute's high
// and low; and the CSV export link. Errors show the api's own `detail` text.

import { ApiError, apiUrl, getJson, type MinuteRange, type PriceAt } from "./api";
import { dateTime, dateTimeMs, isoMinute, isoSecond, parseIso } from "./time";

function field(form: HTMLFormElement, name: string): HTMLInputElement | HTMLSelectElement {
  return form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
}

function showResult(result: HTMLElement, errorBox: HTMLElement, rows: [string, string][]): void {
  result.replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const description = document.createElement("dd");
      description.textContent = value;
      description.dataset.field = name;
      return [term, description];
    }),
  );
  result.hidden = false;
  errorBox.hidden = true;
}

function showError(result: HTMLElement, errorBox: HTMLElement, error: unknown): void {
  result.hidden = true;
  errorBox.textContent = error instanceof ApiError ? error.message : String(error);
  errorBox.hidden = false;
}

function wire(form: HTMLFormElement, ask: () => Promise<[string, string][]>): void {
  const result = form.parentElement?.querySelector(".result") as HTMLElement;
  const errorBox = form.parentElement?.querySelector(".error") as HTMLElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    form.dataset.busy = "true";
    ask()
      .then((rows) => showResult(result, errorBox, rows))
      .catch((error: unknown) => showError(result, errorBox, error))
      .finally(() => {
        form.dataset.busy = "false";
      });
  });
}

export function wirePriceAt(form: HTMLFormElement): void {
  wire(form, async () => {
    const answer = await getJson<PriceAt>("/v1/prices/at", {
      symbol: field(form, "symbol").value,
      timestamp: field(form, "timestamp").value.trim(),
    });
    return [
      ["price", answer.price],
      ["second", dateTime(parseIso(answer.timestamp))],
      answer.source === "klines"
        ? ["trade", `1s kline of ${dateTimeMs(parseIso(answer.actual_timestamp))} (no trades stored)`]
        : ["trade", `${answer.trade_id} at ${dateTimeMs(parseIso(answer.actual_timestamp))}`],
      ["quantity", answer.quantity ?? "–"],
    ];
  });
}

export function wireMinuteRange(form: HTMLFormElement): void {
  wire(form, async () => {
    const answer = await getJson<MinuteRange>("/v1/prices/minmax", {
      symbol: field(form, "symbol").value,
      minute: field(form, "minute").value.trim(),
    });
    const minute = dateTime(parseIso(answer.minute)).replace(":00 UTC", " UTC");
    if (answer.high === null || answer.low === null) {
      return [
        ["minute", minute],
        ["trades", "none in that minute"],
      ];
    }
    return [
      ["minute", minute],
      ["high", answer.high],
      ["low", answer.low],
      ["open", answer.open ?? ""],
      ["close", answer.close ?? ""],
      ["volume", answer.volume],
      ["trades", String(answer.trade_count)],
    ];
  });
}

export function wireExport(form: HTMLFormElement, link: HTMLAnchorElement, errorBox: HTMLElement): void {
  const params = () => ({
    symbol: field(form, "symbol").value,
    start: field(form, "start").value.trim(),
    end: field(form, "end").value.trim(),
  });
  const refresh = () => {
    link.href = apiUrl("/v1/trades", { ...params(), format: "csv" });
  };
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
  // A download of a 422 would save the error as a .csv: ask for one JSON row first, and show the
  // api's error text instead of downloading when the range is wrong.
  link.addEventListener("click", (event) => {
    if (link.dataset.checked === "true") {
      link.dataset.checked = "false";
      return;
    }
    event.preventDefault();
    refresh();
    getJson("/v1/trades", { ...params(), format: "json", limit: 1 })
      .then(() => {
        errorBox.hidden = true;
        link.dataset.checked = "true";
        link.click();
      })
      .catch((error: unknown) => {
        errorBox.textContent = error instanceof ApiError ? error.message : String(error);
        errorBox.hidden = false;
      });
  });
}

/** Defaults near now, so that the forms answer something on a first click. */
export function fillDefaults(nowMs: number): void {
  const set = (selector: string, value: string) => {
    const input = document.querySelector<HTMLInputElement>(selector);
    if (input && !input.value) input.value = value;
  };
  set("#price-at-form [name=timestamp]", isoSecond(nowMs - 60_000));
  set("#minmax-form [name=minute]", isoMinute(nowMs - 60_000));
  set("#export-form [name=start]", isoMinute(nowMs - 3_600_000));
  set("#export-form [name=end]", isoMinute(nowMs + 60_000));
}
