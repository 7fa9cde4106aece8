import { ErrorCode } from '../protocol/errors.js';
import type { GroupState } from '../group/group.js';
import { defineApi, type BrokerState } from './types.js';

interface MemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  metadata: Buffer;
  assignment: Buffer;
}
interface GroupDescription {
  errorCode: number;
  groupId: string;
  state: GroupState | 'Dead';
  protocolType: string;
  protocolData: string;
  members: MemberDescription[];
}
interface Req {
  groups: string[];
}
interface Res {
  groups: GroupDescription[];
}

/** DescribeGroups (key 15) v0-v4. A group the broker never saw is reported as Dead. */
export const describeGroupsApi = defineApi<Req, Res>({
  apiKey: 15,
  name: 'DescribeGroups',
  minVersion: 0,
  maxVersion: 4,
  decode(r, version) {
    const groups = r.array((r) => r.string());
    if (version >= 3) r.bool(); // include authorized operations
    return { groups };
  },
  handle: (req, ctx) => ({ groups: req.groups.map((id) => describe(ctx.broker, id)) }),
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.array(res.groups, (w, g) => {
      w.int16(g.errorCode).string(g.groupId).string(g.state).string(g.protocolType).string(g.protocolData);
      w.array(g.members, (w, m) => {
        w.string(m.memberId);
        if (version >= 4) w.nullableString(m.groupInstanceId);
        w.string(m.clientId).string(m.clientHost).bytes(m.metadata).bytes(m.assignment);
      });
      if (version >= 3) w.int32(-2147483648);
    });
  },
  errorResponse: (req, errorCode) => ({
    groups: req.groups.map((groupId) => ({ errorCode, groupId, state: 'Dead', protocolType: '', protocolData: '', members: [] })),
  }),
});

function describe(broker: BrokerState, groupId: string): GroupDescription {
  const group = broker.coordinator.group(groupId);
  if (!group) {
    const state = broker.offsets.hasGroup(groupId) ? 'Empty' : 'Dead';
    return { errorCode: ErrorCode.NONE, groupId, state, protocolType: '', protocolData: '', members: [] };
  }
  // Kafka shows member metadata and assignments only once a protocol is chosen.
  const stable = group.state === 'Stable';
  return {
    errorCode: ErrorCode.NONE,
    groupId,
    state: group.state,
    protocolType: group.protocolType ?? '',
    protocolData: stable ? (group.protocolName ?? '') : '',
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      metadata: stable ? (m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0)) : Buffer.alloc(0),
      assignment: stable ? m.assignment : Buffer.alloc(0),
    })),
  };
}
