import { ErrorCode } from '../protocol/errors.js';
import { defineApi } from './types.js';

interface Res {
  errorCode: number;
  groups: { groupId: string; protocolType: string }[];
}

/** ListGroups (key 16) v0-v2: groups with members, and empty groups that hold offsets. */
export const listGroupsApi = defineApi<null, Res>({
  apiKey: 16,
  name: 'ListGroups',
  minVersion: 0,
  maxVersion: 2,
  decode: () => null,
  handle(_req, ctx) {
    const { coordinator, offsets } = ctx.broker;
    const ids = new Set([...coordinator.groupIds(), ...offsets.groupIds()]);
    const groups = [...ids]
      .filter((id) => (coordinator.group(id)?.members.size ?? 0) > 0 || offsets.hasGroup(id))
      .map((groupId) => ({ groupId, protocolType: coordinator.group(groupId)?.protocolType ?? 'consumer' }));
    return { errorCode: ErrorCode.NONE, groups };
  },
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.int16(res.errorCode).array(res.groups, (w, g) => w.string(g.groupId).string(g.protocolType));
  },
  errorResponse: (_req, errorCode) => ({ errorCode, groups: [] }),
});
