import { ErrorCode } from '../protocol/errors.js';
import { defineApi } from './types.js';

/** Kafka's "delete up to the high watermark" offset in a DeleteRecords request. */
const HIGH_WATERMARK = -1;

interface Req {
  topics: { name: string; partitions: { partition: number; offset: number }[] }[];
}
interface Res {
  topics: { name: string; partitions: { partition: number; lowWatermark: number; errorCode: number }[] }[];
}

/**
 * DeleteRecords (key 21) v0-v1, what admin tools use for retention by hand: the log start
 * moves to the offset (-1: the high watermark) and the new low watermark is answered. An
 * offset past the high watermark is OFFSET_OUT_OF_RANGE, as in Kafka.
 */
export const deleteRecordsApi = defineApi<Req, Res>({
  apiKey: 21,
  name: 'DeleteRecords',
  minVersion: 0,
  maxVersion: 1,
  decode(r) {
    const topics = r.array((r) => ({
      name: r.string(),
      partitions: r.array((r) => ({ partition: r.int32(), offset: r.int64() })),
    }));
    r.int32(); // timeout: one node, nothing to wait for
    return { topics };
  },
  handle(req, ctx) {
    return {
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map(({ partition, offset }) => {
          const log = ctx.broker.topics.partition(t.name, partition);
          if (!log) return { partition, lowWatermark: -1, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
          const to = offset === HIGH_WATERMARK ? log.highWatermark : offset;
          if (to < 0 || to > log.highWatermark) return { partition, lowWatermark: -1, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
          log.deleteBefore(to);
          return { partition, lowWatermark: log.logStartOffset, errorCode: ErrorCode.NONE };
        }),
      })),
    };
  },
  encode(w, res) {
    w.int32(0); // throttle
    w.array(res.topics, (w, t) =>
      w.string(t.name).array(t.partitions, (w, p) => w.int32(p.partition).int64(p.lowWatermark).int16(p.errorCode)),
    );
  },
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partition, lowWatermark: -1, errorCode })),
    })),
  }),
});
