import { ErrorCode } from '../protocol/errors.js';
import { defineApi, type BrokerConfig } from './types.js';

const GROUP_KEY = 0;
const TRANSACTION_KEY = 1;

interface Req {
  key: string;
  keyType: number;
}
interface Res {
  errorCode: number;
  broker: BrokerConfig;
}

/** FindCoordinator (key 10) v0-v2: this broker coordinates every group and every transactional id. */
export const findCoordinatorApi = defineApi<Req, Res>({
  apiKey: 10,
  name: 'FindCoordinator',
  minVersion: 0,
  maxVersion: 2,
  decode(r, version) {
    return { key: r.string(), keyType: version >= 1 ? r.int8() : GROUP_KEY };
  },
  handle(req, ctx) {
    const errorCode = req.keyType === GROUP_KEY || req.keyType === TRANSACTION_KEY ? ErrorCode.NONE : ErrorCode.INVALID_REQUEST;
    return { errorCode, broker: ctx.broker.config };
  },
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.int16(res.errorCode);
    if (version >= 1)
      w.nullableString(res.errorCode === ErrorCode.NONE ? null : 'the key type is neither a group (0) nor a transactional id (1)');
    if (res.errorCode === ErrorCode.NONE) w.int32(res.broker.nodeId).string(res.broker.advertisedHost).int32(res.broker.port);
    else w.int32(-1).string('').int32(-1);
  },
  errorResponse: (_req, errorCode, ctx) => ({ errorCode, broker: ctx.broker.config }),
});
