/** Consumer group state, following Kafka's classic group protocol state machine. */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

export interface ProtocolMetadata {
  name: string;
  metadata: Buffer;
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolName: string;
  leader: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncResult {
  errorCode: number;
  assignment: Buffer;
}

export interface Member {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: ProtocolMetadata[];
  assignment: Buffer;
  /** Set while the member's JoinGroup is parked until the rebalance completes. */
  awaitingJoin?: (result: JoinResult) => void;
  /** Set while the member's SyncGroup is parked until the leader sends assignments. */
  awaitingSync?: (result: SyncResult) => void;
  sessionTimer?: NodeJS.Timeout;
}

export class Group {
  state: GroupState = 'Empty';
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** Ids handed out with MEMBER_ID_REQUIRED that may join next (KIP-394). */
  readonly pendingMemberIds = new Set<string>();
  rebalanceTimer?: NodeJS.Timeout;
  /** While set, an initial rebalance of an empty group waits for more members to arrive. */
  initialDelayTimer?: NodeJS.Timeout;

  constructor(readonly groupId: string) {}
}

/**
 * The protocol every member supports that most members list first (ties: the earliest in the
 * first member's preference order), as Kafka's coordinator chooses it. Null if none is common.
 */
export function selectProtocol(members: readonly Pick<Member, 'protocols'>[]): string | null {
  if (members.length === 0) return null;
  const common = members[0].protocols.map((p) => p.name).filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
  if (common.length === 0) return null;
  const votes = new Map<string, number>();
  for (const m of members) {
    const choice = m.protocols.find((p) => common.includes(p.name))!.name;
    votes.set(choice, (votes.get(choice) ?? 0) + 1);
  }
  let best = common[0];
  for (const name of common) if ((votes.get(name) ?? 0) > (votes.get(best) ?? 0)) best = name;
  return best;
}
