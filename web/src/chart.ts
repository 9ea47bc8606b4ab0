// The candlestick chart: candles and volume from /v1/candles, SMA 10 and 20 from
// /v1/indicators/sma. The api's decimal strings become numbers here only to be plotted; the
// legend shows the strings themselves.

import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  LineSeries,
  type MouseEventParams,
  type UTCTimestamp,
} from "lightweight-charts";
import { ApiError, type Candle, type Candles, type CoveragePeriod, getJson, type Sma, type SmaPoint } from "./api";
import { digits } from "./decimal";
import { dateTime, parseIso } from "./time";

const INTERVAL_SECONDS: Record<string, number> = {
  "1s": 1,
  "1m": 60,
  "5m": 300,
  "15m": 900,
  "1h": 3600,
  "4h": 14_400,
  "1d": 86_400,
};
// The api's default maximum of candles per answer.
const MAX_CANDLES = 5000;
const SMA_WINDOWS = ["10", "20"] as const;
const UP = "#26a69a";
const DOWN = "#ef5350";
// A new trade of the charted symbol refreshes the newest candles at most this often.
const TAIL_REFRESH_MS = 2000;
// Significant digits a plotted price (a float) keeps exactly: the axis shows no more than these.
const FLOAT_DIGITS = 15;
// Known holes are shaded with a full-height bar per interval inside them (at most this many).
const HOLE_COLOR = "rgba(255, 183, 77, 0.22)";
const MAX_HOLE_BARS = 5000;

export interface ChartSelection {
  symbol: string;
  interval: string;
  rangeSeconds: number;
}

function toTime(iso: string): UTCTimestamp {
  return Math.floor(parseIso(iso) / 1000) as UTCTimestamp;
}

function candleBar(candle: Candle) {
  return {
    time: toTime(candle.open_time),
    open: Number(candle.open),
    high: Number(candle.high),
    low: Number(candle.low),
    close: Number(candle.close),
  };
}

function volumeBar(candle: Candle) {
  return {
    time: toTime(candle.open_time),
    value: Number(candle.volume),
    color: Number(candle.close) >= Number(candle.open) ? `${UP}80` : `${DOWN}80`,
  };
}

function smaLine(points: SmaPoint[], window: string) {
  return points.flatMap((point) => {
    const value = point.sma[window];
    return value == null ? [] : [{ time: toTime(point.open_time), value: Number(value) }];
  });
}

/** Full-height bars at every interval open inside the holes: the chart's shading of what the
 * store knows it lacks (no candle is drawn there; /v1/candles leaves those intervals out). */
export function holeBars(holes: CoveragePeriod[], stepSeconds: number) {
  const times = new Set<number>();
  for (const hole of holes) {
    const end = parseIso(hole.end) / 1000;
    for (let time = Math.floor(parseIso(hole.start) / 1000 / stepSeconds) * stepSeconds; time < end; time += stepSeconds) {
      if (times.size >= MAX_HOLE_BARS) break;
      times.add(time);
    }
  }
  return [...times].sort((a, b) => a - b).map((time) => ({ time: time as UTCTimestamp, value: 1, color: HOLE_COLOR }));
}

/** The price format of the candles' series: as many decimals as their prices have (trailing
 * zeros left out), so that the axis and the crosshair show a price of 0.00000099 as such, not as
 * 0.00; fewer only where a float could not hold them. */
export function priceFormat(candles: Iterable<Candle>) {
  let whole = 1;
  let fraction = 0;
  for (const candle of candles) {
    for (const value of [candle.open, candle.high, candle.low, candle.close]) {
      const counted = digits(value);
      whole = Math.max(whole, counted.whole);
      fraction = Math.max(fraction, counted.fraction);
    }
  }
  const precision = Math.min(fraction, Math.max(0, FLOAT_DIGITS - whole));
  // base, not 1 / minMove: 1 / 1e-5 is 99999.99999999999 in floats.
  return { type: "price" as const, precision, minMove: Number(`1e-${precision}`), base: 10 ** precision };
}

/** What to ask the api for: the whole range when it fits in one answer, else its newest end. */
export function candleQuery(selection: ChartSelection, nowMs: number) {
  const step = INTERVAL_SECONDS[selection.interval] ?? 60;
  const wanted = Math.ceil(selection.rangeSeconds / step);
  if (wanted <= MAX_CANDLES) {
    const startSeconds = Math.floor(nowMs / 1000 / step) * step - (wanted - 1) * step;
    return { params: { start: startSeconds * 1000, limit: wanted }, truncated: false };
  }
  return { params: { limit: MAX_CANDLES }, truncated: true };
}

export class PriceChart {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly smas: Map<string, ISeriesApi<"Line">>;
  private readonly holes: ISeriesApi<"Histogram">;
  private readonly byTime = new Map<number, Candle>();
  private selection: ChartSelection | null = null;
  private loading: AbortController | null = null;
  private tailTimer: number | undefined;
  private lastTailAt = 0;
  private hovering = false;
  private precision: number | null = null;

  constructor(
    private readonly container: HTMLElement,
    private readonly card: HTMLElement,
    private readonly caption: HTMLElement,
    private readonly ohlc: HTMLElement,
    private readonly errorBox: HTMLElement,
  ) {
    this.chart = createChart(container, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#131722" }, textColor: "#c7ccd6" },
      grid: { vertLines: { color: "#1f2430" }, horzLines: { color: "#1f2430" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a2f3a" },
      rightPriceScale: { borderColor: "#2a2f3a" },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
      borderVisible: false,
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    // Behind the candles, on an axis of its own that spans the whole height.
    this.holes = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "holes",
      lastValueVisible: false,
      priceLineVisible: false,
      base: 0,
    });
    this.chart.priceScale("holes").applyOptions({ scaleMargins: { top: 0, bottom: 0 }, visible: false });
    this.smas = new Map(
      SMA_WINDOWS.map((window, index) => [
        window,
        this.chart.addSeries(LineSeries, {
          color: index === 0 ? "#f5a623" : "#4f8ff7",
          lineWidth: 2,
          lastValueVisible: false,
          priceLineVisible: false,
          crosshairMarkerVisible: false,
        }),
      ]),
    );
    this.chart.subscribeCrosshairMove((param) => {
      this.hovering = param.time !== undefined;
      this.showOhlc(param);
    });
  }

  fit(): void {
    this.chart.timeScale().fitContent();
  }

  async load(selection: ChartSelection): Promise<void> {
    this.selection = selection;
    this.loading?.abort();
    const loading = new AbortController();
    this.loading = loading;
    const step = INTERVAL_SECONDS[selection.interval] ?? 60;
    this.chart.applyOptions({ timeScale: { secondsVisible: step < 60 } });
    const query = candleQuery(selection, Date.now());
    const params = { symbol: selection.symbol, interval: selection.interval, ...query.params };
    this.card.dataset.loading = "true";
    try {
      const [candles, sma] = await Promise.all([
        getJson<Candles>("/v1/candles", params, loading.signal),
        getJson<Sma>("/v1/indicators/sma", { ...params, windows: SMA_WINDOWS.join(",") }, loading.signal),
      ]);
      this.show(candles.candles, sma.points, candles.holes ?? [], step);
      const note = query.truncated ? ` (the newest ${MAX_CANDLES} of the range)` : "";
      const holes = candles.holes ?? [];
      const holeNote = holes.length
        ? `; ${holes.length} known ${holes.length === 1 ? "hole" : "holes"} (shaded): ${holes.map(holeText).join(", ")}`
        : "";
      this.caption.textContent = `${candles.candles.length} candles${note}${holeNote}`;
      this.card.dataset.candles = String(candles.candles.length);
      this.card.dataset.holes = String(holes.length);
      this.errorBox.hidden = true;
    } catch (error) {
      if (loading.signal.aborted) return;
      this.show([], [], [], step);
      this.caption.textContent = "";
      this.card.dataset.candles = "0";
      this.errorBox.textContent = error instanceof ApiError ? error.message : String(error);
      this.errorBox.hidden = false;
    } finally {
      if (this.loading === loading) this.card.dataset.loading = "false";
    }
  }

  /** A new trade of `symbol` arrived: refresh the newest candles (throttled), keeping zoom and pan. */
  tradeArrived(symbol: string): void {
    if (this.selection?.symbol !== symbol || this.card.dataset.loading === "true" || this.tailTimer) return;
    const wait = Math.max(0, this.lastTailAt + TAIL_REFRESH_MS - Date.now());
    this.tailTimer = window.setTimeout(() => {
      this.tailTimer = undefined;
      this.lastTailAt = Date.now();
      void this.refreshTail();
    }, wait);
  }

  private async refreshTail(): Promise<void> {
    const selection = this.selection;
    if (!selection || this.byTime.size === 0) return;
    const params = { symbol: selection.symbol, interval: selection.interval, limit: 2 };
    try {
      const [candles, sma] = await Promise.all([
        getJson<Candles>("/v1/candles", params),
        getJson<Sma>("/v1/indicators/sma", { ...params, windows: SMA_WINDOWS.join(",") }),
      ]);
      if (selection !== this.selection) return;
      const newest = Math.max(...this.byTime.keys());
      for (const candle of candles.candles) {
        const time = toTime(candle.open_time);
        if (time < newest) continue; // lightweight-charts only updates the last bar or appends
        this.byTime.set(time, candle);
        this.candles.update(candleBar(candle));
        this.volume.update(volumeBar(candle));
      }
      this.followDecimals();
      for (const [window, series] of this.smas) {
        for (const point of smaLine(sma.points, window)) if (point.time >= newest) series.update(point);
      }
      this.card.dataset.candles = String(this.byTime.size);
      this.caption.textContent = this.caption.textContent?.replace(/^\d+/, String(this.byTime.size)) ?? "";
      if (!this.hovering) this.showOhlc(null);
      this.showAxisClose();
    } catch {
      // The next trade tries again; a failing api shows in the connection badge.
    }
  }

  private show(candles: Candle[], points: SmaPoint[], holes: CoveragePeriod[], stepSeconds: number): void {
    const bars = holeBars(holes, stepSeconds);
    this.holes.setData(bars);
    this.card.dataset.holeBars = String(bars.length);
    this.byTime.clear();
    for (const candle of candles) this.byTime.set(toTime(candle.open_time), candle);
    this.followDecimals();
    this.candles.setData(candles.map(candleBar));
    this.volume.setData(candles.map(volumeBar));
    for (const [window, series] of this.smas) series.setData(smaLine(points, window));
    this.fit();
    this.showOhlc(null);
    this.showAxisClose();
  }

  /** Prices (candles and the averages, on the same axis) drawn with the candles' decimals. */
  private followDecimals(): void {
    const format = priceFormat(this.byTime.values());
    if (format.precision === this.precision) return;
    this.precision = format.precision;
    this.candles.applyOptions({ priceFormat: format });
    for (const series of this.smas.values()) series.applyOptions({ priceFormat: format });
  }

  /** For the page's test: the newest close as the price axis labels it (the axis is a canvas). */
  private showAxisClose(): void {
    const newest = this.byTime.get(Math.max(-1, ...this.byTime.keys()));
    this.card.dataset.axisClose = newest ? this.candles.priceFormatter().format(Number(newest.close)) : "";
  }

  private showOhlc(param: MouseEventParams | null): void {
    const time = typeof param?.time === "number" ? param.time : Math.max(-1, ...this.byTime.keys());
    const candle = this.byTime.get(time);
    this.ohlc.textContent = candle
      ? `${dateTime(parseIso(candle.open_time))}  O ${candle.open}  H ${candle.high}  L ${candle.low}  C ${candle.close}  V ${candle.volume}  (${candle.trade_count} trades)`
      : "";
  }
}

function holeText(hole: CoveragePeriod): string {
  const detail = hole.detail ? ` (${hole.detail})` : "";
  return `${dateTime(parseIso(hole.start))} to ${dateTime(parseIso(hole.end))}${detail}`;
}
