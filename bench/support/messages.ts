/** The ~150-byte JSON click events the transformation benchmarks feed; numbers vary so nothing compresses to nothing. */
const COUNTRIES = ['DE', 'FR', 'US', 'JP', 'BR'];
const EVENTS = ['click', 'view', 'buy', 'scroll'];

export function clickEvent(i: number): Buffer {
  return Buffer.from(
    `{"id":${i},"user":"user_${String(i % 100_000).padStart(6, '0')}","event":"${EVENTS[i % 4]}","amount":${(i % 10_000) / 100},` +
      `"ts":${1_689_282_787_000 + i},"country":"${COUNTRIES[i % 5]}","ok":${i % 3 === 0},"session":"s${(i * 2654435761) % 4294967296}","page":"/p/${i % 1000}"}`,
  );
}
