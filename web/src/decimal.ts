// Decimal strings compared as decimals, without floats (a float would round 0.1 + 0.2).

function parts(value: string): { negative: boolean; whole: string; fraction: string } {
  const text = value.trim();
  const negative = text.startsWith("-");
  const [whole = "0", fraction = ""] = text.replace(/^[-+]/, "").split(".");
  return { negative, whole: whole.replace(/^0+(?=\d)/, ""), fraction: fraction.replace(/0+$/, "") };
}

function compareMagnitude(a: ReturnType<typeof parts>, b: ReturnType<typeof parts>): number {
  if (a.whole.length !== b.whole.length) return a.whole.length < b.whole.length ? -1 : 1;
  if (a.whole !== b.whole) return a.whole < b.whole ? -1 : 1;
  const width = Math.max(a.fraction.length, b.fraction.length);
  const fa = a.fraction.padEnd(width, "0");
  const fb = b.fraction.padEnd(width, "0");
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b` ("1.50" equals "1.5"). */
export function compareDecimal(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  const zeroA = /^0*$/.test(pa.whole + pa.fraction);
  const zeroB = /^0*$/.test(pb.whole + pb.fraction);
  const signA = zeroA ? 0 : pa.negative ? -1 : 1;
  const signB = zeroB ? 0 : pb.negative ? -1 : 1;
  if (signA !== signB) return signA < signB ? -1 : 1;
  if (signA === 0) return 0;
  const magnitude = compareMagnitude(pa, pb);
  return signA < 0 ? -magnitude : magnitude;
}

/** Digits before and after the point, leading and trailing zeros left out ("0.00000099": 1 and
 * 8; "84512.34000000": 5 and 2). */
export function digits(value: string): { whole: number; fraction: number } {
  const { whole, fraction } = parts(value);
  return { whole: whole.length, fraction: fraction.length };
}
