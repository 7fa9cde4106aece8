import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCoordinator, type JoinRequest } from '#kafka-broker/group/coordinator.js';
import { ErrorCode } from '#kafka-broker/protocol/errors.js';
import { waitFor } from '#test-support/wait.js';

// The coordinator with real (short) timers, driven the way clients drive it.
const coordinator = () => new GroupCoordinator({ initialRebalanceDelayMs: 0, minSessionTimeoutMs: 10, maxSessionTimeoutMs: 60_000 });

const joinRequest = (memberId: string, over: Partial<JoinRequest> = {}): JoinRequest => ({
  groupId: 'g',
  memberId,
  groupInstanceId: null,
  clientId: 'c',
  clientHost: '127.0.0.1',
  sessionTimeoutMs: 10_000,
  rebalanceTimeoutMs: 10_000,
  protocolType: 'consumer',
  protocols: [{ name: 'range', metadata: Buffer.from(memberId || 'new') }],
  requireKnownMemberId: true,
  ...over,
});

/** KIP-394 two-step join: the first attempt only hands out a member id. */
async function newMemberId(c: GroupCoordinator, over: Partial<JoinRequest> = {}): Promise<string> {
  const first = await c.join(joinRequest('', over));
  assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  return first.memberId;
}

test('joins and leaves rebalance the group: generations increment and the leader sees every member', async () => {
  const c = coordinator();
  try {
    const a = await newMemberId(c);
    const ja = await c.join(joinRequest(a));
    assert.deepEqual([ja.errorCode, ja.generationId, ja.leader, ja.members.map((m) => m.memberId)], [0, 1, a, [a]]);
    assert.equal(
      (
        await c.sync({ groupId: 'g', memberId: a, generationId: 1 }, [{ memberId: a, assignment: Buffer.from('all') }])
      ).assignment.toString(),
      'all',
    );
    assert.equal(c.heartbeat({ groupId: 'g', memberId: a, generationId: 1 }), ErrorCode.NONE);

    // B arrives: its join parks, A learns of the rebalance from its heartbeat and rejoins.
    const b = await newMemberId(c);
    const jbPending = c.join(joinRequest(b));
    assert.equal(c.heartbeat({ groupId: 'g', memberId: a, generationId: 1 }), ErrorCode.REBALANCE_IN_PROGRESS);
    assert.equal(c.validateCommit({ groupId: 'g', memberId: a, generationId: 1 }), ErrorCode.REBALANCE_IN_PROGRESS);
    const [ja2, jb] = await Promise.all([c.join(joinRequest(a)), jbPending]);
    assert.equal(ja2.generationId, 2);
    assert.equal(jb.generationId, 2);
    assert.equal(ja2.leader, a);
    assert.deepEqual(
      ja2.members.map((m) => [m.memberId, m.metadata.toString()]).sort(),
      [
        [a, a],
        [b, b],
      ].sort(),
    );
    assert.deepEqual(jb.members, [], 'followers get no member list');

    // The follower's sync waits for the leader's assignments.
    const sb = c.sync({ groupId: 'g', memberId: b, generationId: 2 }, []);
    const sa = await c.sync({ groupId: 'g', memberId: a, generationId: 2 }, [
      { memberId: a, assignment: Buffer.from('p0') },
      { memberId: b, assignment: Buffer.from('p1') },
    ]);
    assert.equal(sa.assignment.toString(), 'p0');
    assert.equal((await sb).assignment.toString(), 'p1');
    assert.equal(c.heartbeat({ groupId: 'g', memberId: a, generationId: 1 }), ErrorCode.ILLEGAL_GENERATION);
    assert.equal(c.heartbeat({ groupId: 'g', memberId: 'ghost', generationId: 2 }), ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(c.validateCommit({ groupId: 'g', memberId: b, generationId: 2 }), ErrorCode.NONE);
    assert.equal(
      c.validateCommit({ groupId: 'g', memberId: '', generationId: -1 }),
      ErrorCode.ILLEGAL_GENERATION,
      'no simple commits into a live group',
    );

    // A leaves: B must rejoin and becomes leader of generation 3.
    assert.equal(c.leave('g', a), ErrorCode.NONE);
    assert.equal(c.heartbeat({ groupId: 'g', memberId: b, generationId: 2 }), ErrorCode.REBALANCE_IN_PROGRESS);
    const jb3 = await c.join(joinRequest(b));
    assert.deepEqual([jb3.generationId, jb3.leader, jb3.members.length], [3, b, 1]);
    assert.equal(c.leave('g', b), ErrorCode.NONE);
    assert.equal(c.group('g')?.state, 'Empty');
    assert.equal(c.validateCommit({ groupId: 'g', memberId: '', generationId: -1 }), ErrorCode.NONE);
  } finally {
    c.close();
  }
});

/** Forms a stable two-member group the way clients do: A first, then B, then A rejoins. */
async function twoMemberGroup(c: GroupCoordinator, optsB: Partial<JoinRequest>, optsA: Partial<JoinRequest> = {}) {
  const a = await newMemberId(c, optsA);
  await c.join(joinRequest(a, optsA));
  const b = await newMemberId(c, optsB);
  const pendingB = c.join(joinRequest(b, optsB));
  const ja = await c.join(joinRequest(a, optsA));
  const jb = await pendingB;
  assert.equal(ja.generationId, jb.generationId);
  await Promise.all([a, b].map((m) => c.sync({ groupId: 'g', memberId: m, generationId: ja.generationId }, [])));
  return { a, b, generationId: ja.generationId };
}

test('a member that stops heartbeating is evicted after its session timeout', async () => {
  const c = coordinator();
  try {
    const { a, b, generationId } = await twoMemberGroup(c, { sessionTimeoutMs: 100 });
    // A keeps heartbeating; B goes silent.
    let seen: number = ErrorCode.NONE;
    await waitFor(
      'the eviction to trigger a rebalance',
      () => (seen = c.heartbeat({ groupId: 'g', memberId: a, generationId })) !== ErrorCode.NONE,
      { timeoutMs: 5_000 },
    );
    assert.equal(seen, ErrorCode.REBALANCE_IN_PROGRESS);
    assert.equal(c.group('g')?.members.has(b), false);
    const again = await c.join(joinRequest(a));
    assert.deepEqual([again.generationId, again.members.map((m) => m.memberId)], [generationId + 1, [a]]);
    assert.equal(c.heartbeat({ groupId: 'g', memberId: b, generationId: again.generationId }), ErrorCode.UNKNOWN_MEMBER_ID);
  } finally {
    c.close();
  }
});

test('members that do not rejoin within the rebalance timeout are dropped from the generation', async () => {
  const c = coordinator();
  try {
    const opts = { rebalanceTimeoutMs: 150 };
    const { a, generationId } = await twoMemberGroup(c, opts, opts);
    // A rejoins with new metadata, which forces a rebalance; B never rejoins.
    const next = await c.join(joinRequest(a, { ...opts, protocols: [{ name: 'range', metadata: Buffer.from('changed') }] }));
    assert.deepEqual([next.errorCode, next.generationId, next.members.map((m) => m.memberId)], [0, generationId + 1, [a]]);
  } finally {
    c.close();
  }
});

test('joins with bad session timeouts or incompatible protocols are refused', async () => {
  const c = coordinator();
  try {
    assert.equal((await c.join(joinRequest('', { sessionTimeoutMs: 1 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
    assert.equal((await c.join(joinRequest('nobody'))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    const a = await newMemberId(c);
    await c.join(joinRequest(a));
    const other = { protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }] };
    assert.equal(
      (await c.join(joinRequest('', { ...other, requireKnownMemberId: false }))).errorCode,
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
  } finally {
    c.close();
  }
});
