// One tile per symbol: the newest trade's price exactly as stored, its time and age.

import type { LatestPrice } from "./api";
import { compareDecimal } from "./decimal";
import { age, clock, parseIso, type ServerClock } from "./time";

// A symbol whose newest trade is older than this is shown as stale (Binance's liquid pairs
// trade several times a second; a quiet minute means the pipeline or the market stopped).
const STALE_AFTER_MS = 60_000;

interface Tile {
  root: HTMLElement;
  price: HTMLElement;
  detail: HTMLElement;
  age: HTMLElement;
  latest: LatestPrice;
}

export class Tiles {
  private readonly tiles = new Map<string, Tile>();

  constructor(
    private readonly container: HTMLElement,
    private readonly clock: ServerClock,
    private readonly onNewSymbol: (symbol: string) => void,
  ) {
    window.setInterval(() => this.refreshAges(), 1000);
  }

  update(prices: LatestPrice[]): void {
    for (const latest of prices) {
      const tile = this.tiles.get(latest.symbol) ?? this.create(latest.symbol);
      const direction = tile.latest.price ? compareDecimal(latest.price, tile.latest.price) : 0;
      tile.latest = latest;
      tile.price.textContent = latest.price;
      tile.detail.textContent = `qty ${latest.quantity} · trade ${latest.trade_id} · ${clock(parseIso(latest.trade_time))} UTC`;
      tile.root.dataset.tradeId = String(latest.trade_id);
      if (direction !== 0) {
        tile.root.dataset.direction = direction > 0 ? "up" : "down";
        tile.root.classList.remove("flash");
        void tile.root.offsetWidth; // restart the flash animation
        tile.root.classList.add("flash");
      }
    }
    this.refreshAges();
  }

  /** Dims every tile while the feed is down: the prices shown may be old. */
  setOffline(offline: boolean): void {
    this.container.classList.toggle("offline", offline);
  }

  private create(symbol: string): Tile {
    document.getElementById("tiles-empty")?.remove();
    const root = document.createElement("article");
    root.className = "tile";
    root.dataset.symbol = symbol;
    root.innerHTML = `<header><span class="symbol"></span><span class="age"></span></header>
      <div class="price" data-testid="price"></div><div class="detail muted"></div>`;
    (root.querySelector(".symbol") as HTMLElement).textContent = symbol;
    const tile: Tile = {
      root,
      price: root.querySelector(".price") as HTMLElement,
      detail: root.querySelector(".detail") as HTMLElement,
      age: root.querySelector(".age") as HTMLElement,
      latest: { symbol, price: "", quantity: "", trade_id: 0, trade_time: "" },
    };
    const after = [...this.tiles.keys()].filter((other) => other > symbol).sort()[0];
    this.container.insertBefore(root, after ? (this.tiles.get(after)?.root ?? null) : null);
    this.tiles.set(symbol, tile);
    this.onNewSymbol(symbol);
    return tile;
  }

  private refreshAges(): void {
    const now = this.clock.now();
    for (const tile of this.tiles.values()) {
      if (!tile.latest.trade_time) continue;
      const elapsed = now - parseIso(tile.latest.trade_time);
      const stale = elapsed > STALE_AFTER_MS;
      tile.root.classList.toggle("stale", stale);
      tile.age.textContent = stale ? `stale: no trade for ${age(elapsed)}` : `${age(elapsed)} ago`;
    }
  }
}
