import { defineApi } from './types.js';

interface Req {
  groupId: string;
  generationId: number;
  memberId: string;
}
interface Res {
  errorCode: number;
}

/** Heartbeat (key 12) v0-v3: REBALANCE_IN_PROGRESS tells a member to rejoin. */
export const heartbeatApi = defineApi<Req, Res>({
  apiKey: 12,
  name: 'Heartbeat',
  minVersion: 0,
  maxVersion: 3,
  decode(r, version) {
    const req = { groupId: r.string(), generationId: r.int32(), memberId: r.string() };
    if (version >= 3) r.nullableString(); // group instance id
    return req;
  },
  handle: (req, ctx) => ({ errorCode: ctx.broker.coordinator.heartbeat(req) }),
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.int16(res.errorCode);
  },
  errorResponse: (_req, errorCode) => ({ errorCode }),
});
