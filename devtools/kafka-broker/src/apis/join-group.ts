import type { JoinResult } from '../group/group.js';
import type { ProtocolMetadata } from '../group/group.js';
import { defineApi } from './types.js';

interface Req {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string;
  protocols: ProtocolMetadata[];
}

/**
 * JoinGroup (key 11) v0-v5. From v4 a first join without a member id is answered with
 * MEMBER_ID_REQUIRED and an id to rejoin with (KIP-394). The response parks until the rebalance
 * completes.
 */
export const joinGroupApi = defineApi<Req, JoinResult>({
  apiKey: 11,
  name: 'JoinGroup',
  minVersion: 0,
  maxVersion: 5,
  decode(r, version) {
    const groupId = r.string();
    const sessionTimeoutMs = r.int32();
    const rebalanceTimeoutMs = version >= 1 ? r.int32() : sessionTimeoutMs;
    const memberId = r.string();
    const groupInstanceId = version >= 5 ? r.nullableString() : null;
    const protocolType = r.string();
    const protocols = r.array((r) => ({ name: r.string(), metadata: Buffer.from(r.bytes()) }));
    return { groupId, sessionTimeoutMs, rebalanceTimeoutMs, memberId, groupInstanceId, protocolType, protocols };
  },
  handle(req, ctx) {
    return ctx.broker.coordinator.join({
      ...req,
      clientId: ctx.clientId,
      clientHost: ctx.clientHost,
      requireKnownMemberId: ctx.version >= 4,
    });
  },
  encode(w, res, version) {
    if (version >= 2) w.int32(0);
    w.int16(res.errorCode).int32(res.generationId).string(res.protocolName).string(res.leader).string(res.memberId);
    w.array(res.members, (w, m) => {
      w.string(m.memberId);
      if (version >= 5) w.nullableString(m.groupInstanceId);
      w.bytes(m.metadata);
    });
  },
  errorResponse: (req, errorCode) => ({ errorCode, generationId: -1, protocolName: '', leader: '', memberId: req.memberId, members: [] }),
});
