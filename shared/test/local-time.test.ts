import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localToEpochMs, LocalTimeError, parseLocalDateTime } from '../src/local-time.js';

describe('local date-times in a zone', () => {
  const cases: [string, string, string][] = [
    // input, zone, expected instant (UTC ISO)
    ['2022-11-22 09:00:00', 'Asia/Shanghai', '2022-11-22T01:00:00.000Z'],
    ['20221122090000', 'Asia/Shanghai', '2022-11-22T01:00:00.000Z'],
    ['2022112209', 'UTC', '2022-11-22T09:00:00.000Z'],
    ['2022-11-22T10:00', '', '2022-11-22T10:00:00.000Z'],
    ['2024-01-15 12:00:00.5', 'America/New_York', '2024-01-15T17:00:00.500Z'],
    ['2024-07-15 12:00:00', 'America/New_York', '2024-07-15T16:00:00.000Z'],
    // spring forward: 02:30 does not exist in New York on 2024-03-10; it becomes 03:30 EDT
    ['2024-03-10 02:30:00', 'America/New_York', '2024-03-10T07:30:00.000Z'],
    // fall back: 01:30 happens twice on 2024-11-03; the earlier (EDT) instant wins
    ['2024-11-03 01:30:00', 'America/New_York', '2024-11-03T05:30:00.000Z'],
    ['2024-03-31 02:30:00', 'Europe/Berlin', '2024-03-31T01:30:00.000Z'],
    ['2024-10-27 02:30:00', 'Europe/Berlin', '2024-10-27T00:30:00.000Z'],
    ['2024-02-29 00:00:00', 'Asia/Kolkata', '2024-02-28T18:30:00.000Z'],
  ];
  for (const [input, zone, expected] of cases) {
    it(`${input} in ${zone || 'UTC'}`, () => {
      assert.equal(new Date(localToEpochMs(input, zone)).toISOString(), expected);
    });
  }

  it('a day across spring-forward is 23 hours long', () => {
    const start = localToEpochMs('2024-03-10 00:00', 'America/New_York');
    const end = localToEpochMs('2024-03-11 00:00', 'America/New_York');
    assert.equal(end - start, 23 * 3_600_000);
  });

  const bad: [string, string, RegExp][] = [
    ['2023-02-29 00:00', 'UTC', /day 29 does not exist in 2023-02/],
    ['2023-13-01', 'UTC', /month 13/],
    ['2023-01-01 24:00', 'UTC', /hour 24/],
    ['yesterday', 'UTC', /not a local date-time/],
    ['2023-01-01 00:00', 'Mars/Olympus', /not an IANA time zone/],
  ];
  for (const [input, zone, message] of bad) {
    it(`refuses ${input} in ${zone}`, () => {
      assert.throws(
        () => localToEpochMs(input, zone),
        (err: unknown) => err instanceof LocalTimeError && message.test(err.message),
      );
    });
  }

  it('parses milliseconds by position', () => {
    assert.equal(parseLocalDateTime('2024-01-01 00:00:00.05').ms, 50);
  });
});
