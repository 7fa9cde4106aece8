/**
 * One CSV record per Kafka message (RFC 4180 quoting): fields split on the delimiter,
 * a quoted field may contain the delimiter, line breaks and doubled quotes. An empty
 * unquoted field is null; `""` is the empty string. A line break outside quotes ends the
 * record; only a trailing one is tolerated.
 */
import { RecordError } from './errors.js';

export interface CsvDialect {
  delimiter: string;
  quote: string;
}

export function parseCsvRecord(text: string, d: CsvDialect, out: (string | null)[] = []): (string | null)[] {
  out.length = 0;
  const { delimiter, quote } = d;
  let end = text.length;
  if (end > 0 && text[end - 1] === '\n') end--;
  if (end > 0 && text[end - 1] === '\r') end--;
  let i = 0;
  for (;;) {
    if (i < end && text[i] === quote) {
      let buf = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf(quote, j);
        if (q < 0 || q >= end) throw new RecordError('invalid_csv', `value is not valid CSV: unterminated quoted field ${out.length + 1}`);
        buf += text.slice(j, q);
        if (text[q + 1] === quote && q + 1 < end) {
          buf += quote;
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push(buf);
      if (i === end) return out;
      if (text.startsWith(delimiter, i)) {
        i += delimiter.length;
        continue;
      }
      throw new RecordError('invalid_csv', `value is not valid CSV: unexpected character after the closing quote of field ${out.length}`);
    }
    let next = text.indexOf(delimiter, i);
    if (next < 0 || next > end) next = end;
    const field = text.slice(i, next);
    if (field.includes('\n') || field.includes('\r')) {
      throw new RecordError(
        'invalid_csv',
        `value is not valid CSV: line break outside quotes in field ${out.length + 1} (one message is one record)`,
      );
    }
    if (field.includes(quote))
      throw new RecordError('invalid_csv', `value is not valid CSV: stray quote in unquoted field ${out.length + 1}`);
    out.push(field === '' ? null : field);
    if (next === end) return out;
    i = next + delimiter.length;
  }
}
