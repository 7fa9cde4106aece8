import type { SyncResult } from '../group/group.js';
import { defineApi } from './types.js';

interface Req {
  groupId: string;
  generationId: number;
  memberId: string;
  assignments: { memberId: string; assignment: Buffer }[];
}

/** SyncGroup (key 14) v0-v3: followers park until the leader's assignments arrive. */
export const syncGroupApi = defineApi<Req, SyncResult>({
  apiKey: 14,
  name: 'SyncGroup',
  minVersion: 0,
  maxVersion: 3,
  decode(r, version) {
    const groupId = r.string();
    const generationId = r.int32();
    const memberId = r.string();
    if (version >= 3) r.nullableString(); // group instance id
    const assignments = r.array((r) => ({ memberId: r.string(), assignment: Buffer.from(r.bytes()) }));
    return { groupId, generationId, memberId, assignments };
  },
  handle(req, ctx) {
    return ctx.broker.coordinator.sync(req, req.assignments);
  },
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.int16(res.errorCode).bytes(res.assignment);
  },
  errorResponse: (_req, errorCode) => ({ errorCode, assignment: Buffer.alloc(0) }),
});
