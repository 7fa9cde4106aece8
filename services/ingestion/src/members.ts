/**
 * A job's parallelism: N members reading it, each with its own Transform stream and its share
 * of the partitions, spread over the ingestion replicas.
 *
 * Every ingestion process runs N consumer-group members for a job (so one process alone can
 * carry the whole job when the others are gone), and the group's assignor — which runs on the
 * group leader, over every member of every process — gives partitions to N of them only:
 * the members with the lowest index first, one of each process before a second of any
 * (index 0 of every process, then index 1, …), so the N active members spread over the
 * replicas. The others hold no partition and open no stream: they wait, as standbys, for a
 * rebalance that needs them. kafkajs's own round-robin assignor would give every member a
 * share, so with R replicas the job would run R × N streams instead of N.
 */
import { AssignerProtocol, type Assigner, type PartitionAssigner } from 'kafkajs';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';

export interface GroupMemberInfo {
  readonly memberId: string;
  /** Which of its process's N members this is (0 … N-1). */
  readonly index: number;
}

/**
 * Which partitions each member reads: the `parallelism` members chosen as above, each with
 * an even share (round-robin over sorted partitions); every other member gets none.
 */
export function assignMembers(
  members: readonly GroupMemberInfo[],
  partitions: readonly number[],
  parallelism: number,
): Map<string, number[]> {
  const chosen = [...members]
    .sort((a, b) => a.index - b.index || a.memberId.localeCompare(b.memberId))
    .slice(0, Math.max(1, Math.min(parallelism, partitions.length)));
  const out = new Map<string, number[]>(members.map((m) => [m.memberId, []]));
  if (chosen.length === 0) return out;
  const sorted = [...partitions].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) out.get(chosen[i % chosen.length].memberId)!.push(sorted[i]);
  return out;
}

/**
 * A member's share of the job's in-flight budget in this process: INGESTION_IN_FLIGHT_BYTES is
 * per job, so N members must not hold N times it.
 */
export function memberInFlightBytes(jobBytes: number, members: number): number {
  return Math.max(1, Math.floor(jobBytes / Math.max(1, members)));
}

const NAME = 'sluice-parallelism';

/** The group assignor of a job with `parallelism` members per process; this member is `index`. */
export function parallelismAssigner(topic: string, parallelism: number, index: number): PartitionAssigner {
  return ({ cluster }): Assigner => ({
    name: NAME,
    version: 1,
    protocol: ({ topics }) => ({
      name: NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.from(String(index)) }),
    }),
    async assign({ members }) {
      const info = members.map((m) => {
        const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
        const index = Number(meta?.userData?.toString() ?? '0');
        return { memberId: m.memberId, index: Number.isInteger(index) ? index : 0 };
      });
      const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId);
      const shares = assignMembers(info, partitions, parallelism);
      return members.map(({ memberId }) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: { [topic]: shares.get(memberId) ?? [] },
          userData: Buffer.alloc(0),
        }),
      }));
    },
  });
}

export interface MemberStatus {
  readonly status: JobStatus;
  /** The group assigned this member partitions. */
  readonly owns: boolean;
}

/**
 * One job status from its members' in this process: counts summed, partitions together, and
 * the state and reason of the member that says most — a failed one, else a finished one (the
 * group leader finishes a bounded job for all), else one reading partitions, else any live
 * one, else the first.
 */
export function mergeMemberStatuses(statuses: readonly MemberStatus[]): JobStatus {
  if (statuses.length === 1) return statuses[0].status;
  const members = statuses.map((m) => m.status);
  // A member that owns nothing lists every partition it knows; the owners' lists are the truth.
  const owners = statuses.filter((m) => m.owns);
  const partitions = owners.length > 0 ? owners.flatMap((m) => m.status.partitions) : members[0].partitions;
  const live = (s: JobStatus) =>
    s.state === JobState.JOB_STATE_RUNNING || s.state === JobState.JOB_STATE_PAUSED || s.state === JobState.JOB_STATE_STOPPING;
  const speaker =
    members.find((s) => s.state === JobState.JOB_STATE_FAILED) ??
    // The group leader records FINISHED for the whole job; the others handed over to it.
    members.find((s) => s.state === JobState.JOB_STATE_FINISHED) ??
    owners.map((m) => m.status).find(live) ??
    members.find(live) ??
    members[0];
  const errors = new Map<string, number>();
  const unmapped = new Map<string, number>();
  for (const m of members) {
    for (const e of m.errors) errors.set(e.reason, (errors.get(e.reason) ?? 0) + e.count);
    for (const f of m.unmappedFields) unmapped.set(f.field, (unmapped.get(f.field) ?? 0) + f.count);
  }
  const lastCommit = members
    .map((m) => m.lastCommit)
    .filter((c) => c !== undefined)
    .sort((a, b) => b.committedAtMs - a.committedAtMs)[0];
  return {
    job: speaker.job,
    state: speaker.state,
    reason: speaker.reason,
    partitions: [...partitions].sort((a, b) => a.partition - b.partition),
    recordsIn: sum(members, (m) => m.recordsIn),
    bytesIn: sum(members, (m) => m.bytesIn),
    rowsOut: sum(members, (m) => m.rowsOut),
    recordsExcluded: sum(members, (m) => m.recordsExcluded),
    errors: [...errors].map(([reason, count]) => ({ reason, count })).sort((a, b) => a.reason.localeCompare(b.reason)),
    unmappedFields: [...unmapped].map(([field, count]) => ({ field, count })).sort((a, b) => a.field.localeCompare(b.field)),
    lastCommit,
    startedAtMs: Math.min(...members.map((m) => m.startedAtMs)),
  };
}

const sum = (xs: readonly JobStatus[], f: (s: JobStatus) => number) => xs.reduce((n, s) => n + f(s), 0);
