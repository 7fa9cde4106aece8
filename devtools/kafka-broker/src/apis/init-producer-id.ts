import { ErrorCode } from '../protocol/errors.js';
import { defineApi } from './types.js';

interface Req {
  transactionalId: string | null;
  transactionTimeoutMs: number;
}
interface Res {
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}

/** InitProducerId (key 22) v0-v1: ids for idempotent producers, and for transactional ids (a new epoch each time). */
export const initProducerIdApi = defineApi<Req, Res>({
  apiKey: 22,
  name: 'InitProducerId',
  minVersion: 0,
  maxVersion: 1,
  decode(r) {
    const transactionalId = r.nullableString();
    return { transactionalId, transactionTimeoutMs: r.int32() };
  },
  handle(req, ctx) {
    if (req.transactionalId !== null) return ctx.broker.transactions.init(req.transactionalId, req.transactionTimeoutMs);
    return { errorCode: ErrorCode.NONE, ...ctx.broker.producers.initProducerId() };
  },
  encode(w, res) {
    w.int32(0).int16(res.errorCode).int64(res.producerId).int16(res.producerEpoch);
  },
  errorResponse: (_req, errorCode) => ({ errorCode, producerId: -1, producerEpoch: -1 }),
});
