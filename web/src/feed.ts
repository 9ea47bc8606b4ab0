// The live price feed: Server-Sent Events from /v1/stream/prices, with our own reconnects.
//
// EventSource retries by itself only after a dropped stream, not after an HTTP error (a 503 when
// the api has too many clients) and not after a connection that silently went dead. So: every
// error closes the stream and reconnects with backoff, and a watchdog treats a stream that has
// sent nothing (the server sends a status event every few seconds) as dead.

import type { LatestPrice } from "./api";

export interface FeedStatus {
  server_time: string;
  polled_at: string | null;
  error: string | null;
}

export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "feed-error"; error: string }
  | { kind: "reconnecting"; attempt: number; inMs: number; why: string };

export interface FeedHandlers {
  prices(prices: LatestPrice[], status: FeedStatus): void;
  status(status: FeedStatus): void;
  connection(state: ConnectionState): void;
}

const SILENCE_LIMIT_MS = 12_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class PriceStream {
  private source: EventSource | null = null;
  private watchdog: number | undefined;
  private retryTimer: number | undefined;
  private attempt = 0;
  private lastEventAt = 0;

  constructor(
    private readonly url: string,
    private readonly handlers: FeedHandlers,
  ) {}

  start(): void {
    this.open();
    this.watchdog = window.setInterval(() => this.checkSilence(), 1000);
  }

  private open(): void {
    this.close();
    const source = new EventSource(this.url);
    this.source = source;
    this.lastEventAt = Date.now();
    source.addEventListener("open", () => {
      this.attempt = 0;
      this.lastEventAt = Date.now();
    });
    source.addEventListener("prices", (event) => {
      const body = this.heard(event) as { prices: LatestPrice[] } & FeedStatus;
      this.handlers.prices(body.prices, body);
      this.reportStatus(body);
    });
    source.addEventListener("status", (event) => {
      const status = this.heard(event) as FeedStatus;
      this.handlers.status(status);
      this.reportStatus(status);
    });
    // The server ends every stream after a while (so that it can shut down): come straight back.
    source.addEventListener("bye", () => this.open());
    source.addEventListener("error", () => {
      if (this.source === source) this.retry("connection lost");
    });
  }

  private heard(event: Event): unknown {
    this.lastEventAt = Date.now();
    return JSON.parse((event as MessageEvent<string>).data);
  }

  private reportStatus(status: FeedStatus): void {
    this.handlers.connection(status.error ? { kind: "feed-error", error: status.error } : { kind: "live" });
  }

  private checkSilence(): void {
    if (this.source && Date.now() - this.lastEventAt > SILENCE_LIMIT_MS) this.retry("no data from the server");
  }

  private retry(why: string): void {
    this.close();
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    // Full jitter: many pages reconnecting after an api restart don't arrive all at once.
    const inMs = Math.round(BACKOFF_MIN_MS / 2 + Math.random() * (ceiling - BACKOFF_MIN_MS / 2));
    this.attempt += 1;
    this.handlers.connection({ kind: "reconnecting", attempt: this.attempt, inMs, why });
    this.retryTimer = window.setTimeout(() => this.open(), inMs);
  }

  private close(): void {
    window.clearTimeout(this.retryTimer);
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }
}
