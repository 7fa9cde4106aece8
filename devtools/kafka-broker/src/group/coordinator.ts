import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../protocol/errors.js';
import { Group, selectProtocol, type JoinResult, type Member, type ProtocolMetadata, type SyncResult } from './group.js';

export interface CoordinatorOptions {
  /** Delay before the first rebalance of an empty group completes (Kafka: group.initial.rebalance.delay.ms). */
  initialRebalanceDelayMs: number;
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
}

export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: ProtocolMetadata[];
  /** JoinGroup v4+ clients understand MEMBER_ID_REQUIRED. */
  requireKnownMemberId: boolean;
}

export interface MemberRef {
  groupId: string;
  memberId: string;
  generationId: number;
}

const joinError = (errorCode: number, memberId = ''): JoinResult => ({
  errorCode,
  generationId: -1,
  protocolName: '',
  leader: '',
  memberId,
  members: [],
});

/**
 * The group coordinator: joins park until every known member has rejoined (or the rebalance
 * timeout evicts the stragglers); then the generation increments and the leader receives every
 * member's metadata. Syncs park until the leader's assignments arrive. Members that stop
 * heartbeating for their session timeout are evicted, which triggers a rebalance.
 */
export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly options: CoordinatorOptions) {}

  group(groupId: string): Group | undefined {
    return this.groups.get(groupId);
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  join(req: JoinRequest): Promise<JoinResult> {
    if (!req.groupId) return Promise.resolve(joinError(ErrorCode.INVALID_GROUP_ID));
    const { minSessionTimeoutMs, maxSessionTimeoutMs } = this.options;
    if (req.sessionTimeoutMs < minSessionTimeoutMs || req.sessionTimeoutMs > maxSessionTimeoutMs) {
      return Promise.resolve(joinError(ErrorCode.INVALID_SESSION_TIMEOUT, req.memberId));
    }
    let group = this.groups.get(req.groupId);
    if (!group) this.groups.set(req.groupId, (group = new Group(req.groupId)));
    if (!req.protocolType || req.protocols.length === 0)
      return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, req.memberId));
    if (group.members.size > 0) {
      const others = [...group.members.values()].filter((m) => m.memberId !== req.memberId);
      if (req.protocolType !== group.protocolType || (others.length > 0 && selectProtocol([...others, req]) === null)) {
        return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, req.memberId));
      }
    }

    let memberId = req.memberId;
    if (memberId === '') {
      memberId = `${req.clientId || 'member'}-${randomUUID()}`;
      if (req.requireKnownMemberId) {
        group.pendingMemberIds.add(memberId);
        return Promise.resolve(joinError(ErrorCode.MEMBER_ID_REQUIRED, memberId));
      }
    } else if (!group.members.has(memberId) && !group.pendingMemberIds.has(memberId)) {
      return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, memberId));
    }
    group.pendingMemberIds.delete(memberId);

    const existing = group.members.get(memberId);
    if (existing && group.state === 'Stable' && memberId !== group.leaderId && sameProtocols(existing.protocols, req.protocols)) {
      // A follower rejoining with unchanged metadata: Kafka answers with the current generation.
      this.touch(group, existing);
      return Promise.resolve(this.joinResult(group, existing));
    }

    return new Promise<JoinResult>((resolve) => {
      const member: Member = existing ?? {
        memberId,
        groupInstanceId: req.groupInstanceId,
        clientId: req.clientId,
        clientHost: req.clientHost,
        sessionTimeoutMs: req.sessionTimeoutMs,
        rebalanceTimeoutMs: req.rebalanceTimeoutMs,
        protocols: req.protocols,
        assignment: Buffer.alloc(0),
      };
      member.sessionTimeoutMs = req.sessionTimeoutMs;
      member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
      member.protocols = req.protocols;
      // A member that re-sends JoinGroup replaces its previous parked join.
      member.awaitingJoin?.(joinError(ErrorCode.REBALANCE_IN_PROGRESS, memberId));
      member.awaitingJoin = resolve;
      if (!existing) {
        group.members.set(memberId, member);
        if (group.members.size === 1) group.protocolType = req.protocolType;
      }
      this.touch(group, member);
      if (group.state !== 'PreparingRebalance') this.prepareRebalance(group);
      this.maybeCompleteJoin(group);
    });
  }

  sync(ref: MemberRef, assignments: { memberId: string; assignment: Buffer }[]): Promise<SyncResult> {
    const group = this.groups.get(ref.groupId);
    const member = group?.members.get(ref.memberId);
    const fail = (errorCode: number) => Promise.resolve({ errorCode, assignment: Buffer.alloc(0) });
    if (!group || !member) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    if (ref.generationId !== group.generationId) return fail(ErrorCode.ILLEGAL_GENERATION);
    if (group.state === 'PreparingRebalance') return fail(ErrorCode.REBALANCE_IN_PROGRESS);
    this.touch(group, member);
    if (group.state === 'Stable') return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: member.assignment });

    return new Promise<SyncResult>((resolve) => {
      member.awaitingSync?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0) });
      member.awaitingSync = resolve;
      if (ref.memberId === group.leaderId) {
        const byMember = new Map(assignments.map((a) => [a.memberId, a.assignment]));
        for (const m of group.members.values()) m.assignment = byMember.get(m.memberId) ?? Buffer.alloc(0);
        group.state = 'Stable';
        for (const m of group.members.values()) {
          const waiting = m.awaitingSync;
          m.awaitingSync = undefined;
          waiting?.({ errorCode: ErrorCode.NONE, assignment: m.assignment });
        }
      }
    });
  }

  heartbeat(ref: MemberRef): number {
    const group = this.groups.get(ref.groupId);
    const member = group?.members.get(ref.memberId);
    if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (ref.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.touch(group, member);
    return group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  leave(groupId: string, memberId: string): number {
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.removeMember(group, member);
    return ErrorCode.NONE;
  }

  /**
   * Whether a member may commit offsets now. generationId -1 with no member id is a "simple"
   * commit (admin tools), allowed only while the group has no members.
   */
  validateCommit(ref: MemberRef): number {
    const group = this.groups.get(ref.groupId);
    if (ref.generationId < 0 && ref.memberId === '') {
      return !group || group.members.size === 0 ? ErrorCode.NONE : ErrorCode.ILLEGAL_GENERATION;
    }
    const member = group?.members.get(ref.memberId);
    if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (ref.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    if (group.state !== 'Stable') return ErrorCode.REBALANCE_IN_PROGRESS;
    this.touch(group, member);
    return ErrorCode.NONE;
  }

  /** Stops every timer and fails parked requests (broker shutdown). */
  close(): void {
    for (const group of this.groups.values()) {
      clearTimeout(group.rebalanceTimer);
      clearTimeout(group.initialDelayTimer);
      for (const m of group.members.values()) {
        clearTimeout(m.sessionTimer);
        m.awaitingJoin?.(joinError(ErrorCode.NOT_COORDINATOR, m.memberId));
        m.awaitingSync?.({ errorCode: ErrorCode.NOT_COORDINATOR, assignment: Buffer.alloc(0) });
      }
    }
    this.groups.clear();
  }

  private joinResult(group: Group, member: Member): JoinResult {
    const isLeader = member.memberId === group.leaderId;
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolName: group.protocolName ?? '',
      leader: group.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0),
          }))
        : [],
    };
  }

  /** (Re)arms a member's session timer: any request from it proves it is alive. */
  private touch(group: Group, member: Member): void {
    clearTimeout(member.sessionTimer);
    member.sessionTimer = setTimeout(() => this.expire(group, member), member.sessionTimeoutMs);
  }

  private expire(group: Group, member: Member): void {
    if (group.members.get(member.memberId) !== member) return;
    // A member parked in JoinGroup or SyncGroup is waiting on others, not dead: the rebalance
    // timeout (join) or the leader's own session (sync) bounds that wait.
    if (member.awaitingJoin || member.awaitingSync) {
      this.touch(group, member);
      return;
    }
    this.removeMember(group, member);
  }

  private removeMember(group: Group, member: Member): void {
    clearTimeout(member.sessionTimer);
    group.members.delete(member.memberId);
    member.awaitingJoin?.(joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.memberId));
    member.awaitingSync?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: Buffer.alloc(0) });
    member.awaitingJoin = member.awaitingSync = undefined;
    if (group.leaderId === member.memberId) group.leaderId = null;
    if (group.state === 'PreparingRebalance') this.maybeCompleteJoin(group);
    else if (group.members.size === 0) this.becomeEmpty(group);
    else this.prepareRebalance(group);
  }

  private becomeEmpty(group: Group): void {
    clearTimeout(group.rebalanceTimer);
    clearTimeout(group.initialDelayTimer);
    group.initialDelayTimer = undefined;
    group.state = 'Empty';
    group.generationId++;
    group.leaderId = null;
    group.protocolName = null;
    group.protocolType = null;
  }

  private prepareRebalance(group: Group): void {
    // Members parked in SyncGroup of the old generation must rejoin.
    for (const m of group.members.values()) {
      const waiting = m.awaitingSync;
      m.awaitingSync = undefined;
      waiting?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0) });
    }
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    const timeout = Math.max(...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));
    clearTimeout(group.rebalanceTimer);
    group.rebalanceTimer = setTimeout(() => this.completeJoin(group), timeout);
    if (wasEmpty && this.options.initialRebalanceDelayMs > 0) {
      group.initialDelayTimer = setTimeout(() => {
        group.initialDelayTimer = undefined;
        this.maybeCompleteJoin(group);
      }, this.options.initialRebalanceDelayMs);
    }
  }

  private maybeCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance' || group.initialDelayTimer) return;
    for (const m of group.members.values()) if (!m.awaitingJoin) return;
    this.completeJoin(group);
  }

  /** Ends the join phase: drops members that did not rejoin, starts the next generation. */
  private completeJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    clearTimeout(group.rebalanceTimer);
    clearTimeout(group.initialDelayTimer);
    group.initialDelayTimer = undefined;
    for (const m of [...group.members.values()]) {
      if (!m.awaitingJoin) {
        clearTimeout(m.sessionTimer);
        group.members.delete(m.memberId);
      }
    }
    if (group.members.size === 0) {
      this.becomeEmpty(group);
      return;
    }
    group.generationId++;
    group.protocolName = selectProtocol([...group.members.values()]);
    if (!group.leaderId || !group.members.has(group.leaderId)) group.leaderId = group.members.keys().next().value!;
    group.state = 'CompletingRebalance';
    for (const m of group.members.values()) {
      const waiting = m.awaitingJoin!;
      m.awaitingJoin = undefined;
      this.touch(group, m);
      waiting(this.joinResult(group, m));
    }
  }
}

function sameProtocols(a: readonly ProtocolMetadata[], b: readonly ProtocolMetadata[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i].name && p.metadata.equals(b[i].metadata));
}
