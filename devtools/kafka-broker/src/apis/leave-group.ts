import { ErrorCode } from '../protocol/errors.js';
import { defineApi } from './types.js';

interface Member {
  memberId: string;
  groupInstanceId: string | null;
}
interface Req {
  groupId: string;
  members: Member[];
}
interface Res {
  errorCode: number;
  members: (Member & { errorCode: number })[];
}

/** LeaveGroup (key 13) v0-v3; v3 leaves several members at once (KIP-345). */
export const leaveGroupApi = defineApi<Req, Res>({
  apiKey: 13,
  name: 'LeaveGroup',
  minVersion: 0,
  maxVersion: 3,
  decode(r, version) {
    const groupId = r.string();
    if (version < 3) return { groupId, members: [{ memberId: r.string(), groupInstanceId: null }] };
    return { groupId, members: r.array((r) => ({ memberId: r.string(), groupInstanceId: r.nullableString() })) };
  },
  handle(req, ctx) {
    const members = req.members.map((m) => ({ ...m, errorCode: ctx.broker.coordinator.leave(req.groupId, m.memberId) }));
    // Before v3 the single member's outcome is the response's error code.
    const errorCode = ctx.version < 3 ? (members[0]?.errorCode ?? ErrorCode.NONE) : ErrorCode.NONE;
    return { errorCode, members };
  },
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.int16(res.errorCode);
    if (version >= 3) w.array(res.members, (w, m) => w.string(m.memberId).nullableString(m.groupInstanceId).int16(m.errorCode));
  },
  errorResponse: (req, errorCode) => ({ errorCode, members: req.members.map((m) => ({ ...m, errorCode })) }),
});
