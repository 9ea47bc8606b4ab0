// Calls to the api's /v1 endpoints. Prices and quantities stay the strings the api sends.

export interface LatestPrice {
  symbol: string;
  price: string;
  quantity: string;
  trade_id: number;
  trade_time: string;
}

export interface PriceAt {
  symbol: string;
  timestamp: string;
  price: string;
  quantity: string | null;
  trade_id: number | null;
  actual_timestamp: string;
  source: "trades" | "klines";
}

export interface MinuteRange {
  symbol: string;
  minute: string;
  high: string | null;
  low: string | null;
  open: string | null;
  close: string | null;
  volume: string;
  quote_volume: string;
  trade_count: number;
  source: "trades" | "klines";
}

export interface Candle {
  open_time: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  trade_count: number;
}

/** A period of /v1/coverage; /v1/candles lists the holes its answer touches. */
export interface CoveragePeriod {
  start: string;
  end: string;
  origin: string;
  detail: string;
}

export interface Candles {
  symbol: string;
  interval: string;
  candles: Candle[];
  next_start: string | null;
  holes: CoveragePeriod[];
}

export interface SmaPoint {
  open_time: string;
  close: string;
  sma: Record<string, string | null>;
}

export interface Sma {
  points: SmaPoint[];
}

export interface SymbolSummary {
  symbol: string;
  last_trade_time: string;
}

export interface PartitionLag {
  group_id: string;
  topic: string;
  partition: number;
  next_offset: number;
  high_watermark: number;
  lag: number;
  updated_at: string;
}

export interface GroupLag {
  group_id: string;
  topic: string;
  lag: number;
  partitions: number;
  oldest_update: string;
}

export interface DeadLetterReason {
  reason: string;
  total: number;
  last_24h: number;
  newest_at: string;
}

export interface PipelineStatus {
  server_time: string;
  lag_by_group: GroupLag[];
  consumer_lag: PartitionLag[];
  dead_letters: { total: number; last_24h: number; newest_at: string | null; by_reason: DeadLetterReason[] };
  symbols: { symbol: string; last_trade_id: number; last_trade_time: string; last_ingested_at: string }[];
}

/** A 4xx/5xx answer: `message` is the api's own `detail` text when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Params = Record<string, string | number | undefined>;

export function apiUrl(path: string, params: Params = {}): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function errorText(response: Response): Promise<string> {
  const body = await response.text();
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === "object" && "detail" in parsed && typeof parsed.detail === "string") {
      return parsed.detail;
    }
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}

export async function getJson<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(apiUrl(path, params), { headers: { Accept: "application/json" }, signal });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "the api did not answer (network error)");
  }
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return (await response.json()) as T;
}
