// Times: the api speaks UTC ISO 8601 (microseconds included); the page shows UTC.

/** Milliseconds since the epoch of an ISO 8601 time; fractions beyond milliseconds are dropped. */
export function parseIso(text: string): number {
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, "0");
}

/** "2025-07-03T08:30:36" (UTC, to the second), what the forms accept. */
export function isoSecond(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export function isoMinute(ms: number): string {
  return isoSecond(ms).slice(0, 16);
}

/** "08:30:36.123" in UTC. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

/** "2025-07-03 08:30:36.123 UTC". */
export function dateTimeMs(ms: number): string {
  return `${isoSecond(ms).replace("T", " ")}.${pad(new Date(ms).getUTCMilliseconds(), 3)} UTC`;
}

/** "2025-07-03 08:30:36 UTC". */
export function dateTime(ms: number): string {
  return `${isoSecond(ms).replace("T", " ")} UTC`;
}

export function age(milliseconds: number): string {
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** The server's clock, as learnt from its events, so that ages don't depend on this machine's. */
export class ServerClock {
  private offsetMs = 0;

  learn(serverTime: string): void {
    const server = parseIso(serverTime);
    if (!Number.isNaN(server)) this.offsetMs = server - Date.now();
  }

  now(): number {
    return Date.now() + this.offsetMs;
  }
}
