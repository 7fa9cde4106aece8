/**
 * The transaction coordinator of a one-node broker (KIP-98), enough for kafkajs and librdkafka
 * transactional producers: transactional ids map to a producer id whose epoch every
 * InitProducerId bumps (fencing the previous instance and aborting its open transaction);
 * partitions and consumer groups join a transaction explicitly; EndTxn writes a commit or abort
 * marker to every partition of the transaction and applies (or drops) its offset commits. A
 * transaction open longer than its timeout is aborted, as Kafka does.
 *
 * In memory only, like producer ids: after a restart the logs' open transactions are aborted at
 * load (PartitionLog.abortOrphanedTransactions) and transactional ids start over.
 */
import { ErrorCode } from '../protocol/errors.js';
import { ControlType } from '../protocol/record-batch.js';
import type { CommittedOffset, OffsetStore } from '../storage/offset-store.js';
import type { ProducerRegistry } from '../storage/producers.js';
import type { TopicStore } from '../storage/topic-store.js';

/** Kafka's transaction.max.timeout.ms default (15 minutes). */
const MAX_TIMEOUT_MS = 900_000;

interface PendingOffset {
  topic: string;
  partition: number;
  value: CommittedOffset;
}

interface Transaction {
  producerId: number;
  epoch: number;
  timeoutMs: number;
  /** "topic\0partition" of every partition added since the last EndTxn. */
  partitions: Set<string>;
  groups: Set<string>;
  offsets: Map<string, PendingOffset[]>;
  timer: NodeJS.Timeout | null;
}

export type InitResult = { errorCode: number; producerId: number; producerEpoch: number };

export class TransactionCoordinator {
  private readonly byId = new Map<string, Transaction>();

  constructor(
    private readonly topics: TopicStore,
    private readonly offsets: OffsetStore,
    private readonly producers: ProducerRegistry,
  ) {}

  /** InitProducerId with a transactional id: the id's producer, with the next epoch. */
  init(transactionalId: string, timeoutMs: number): InitResult {
    if (timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS)
      return { errorCode: ErrorCode.INVALID_TRANSACTION_TIMEOUT, producerId: -1, producerEpoch: -1 };
    let tx = this.byId.get(transactionalId);
    if (!tx) {
      const { producerId } = this.producers.initProducerId();
      tx = { producerId, epoch: -1, timeoutMs, partitions: new Set(), groups: new Set(), offsets: new Map(), timer: null };
      this.byId.set(transactionalId, tx);
    }
    // The previous incarnation's open transaction is aborted, with its (old) epoch.
    if (tx.partitions.size > 0 || tx.groups.size > 0) this.end(tx, false);
    tx.epoch++;
    tx.timeoutMs = timeoutMs;
    return { errorCode: ErrorCode.NONE, producerId: tx.producerId, producerEpoch: tx.epoch };
  }

  /** The transaction a request names, or the error Kafka answers when the producer does not match it. */
  private find(transactionalId: string, producerId: number, epoch: number): Transaction | number {
    const tx = this.byId.get(transactionalId);
    if (!tx || tx.producerId !== producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    if (epoch !== tx.epoch) return ErrorCode.INVALID_PRODUCER_EPOCH;
    return tx;
  }

  private begin(tx: Transaction): void {
    if (tx.timer) return;
    tx.timer = setTimeout(() => this.end(tx, false), tx.timeoutMs);
    tx.timer.unref();
  }

  addPartitions(transactionalId: string, producerId: number, epoch: number, topic: string, partitions: number[]): Map<number, number> {
    const tx = this.find(transactionalId, producerId, epoch);
    const out = new Map<number, number>();
    for (const p of partitions) {
      if (typeof tx === 'number') out.set(p, tx);
      else if (!this.topics.partition(topic, p)) out.set(p, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      else {
        tx.partitions.add(`${topic}\0${p}`);
        this.begin(tx);
        out.set(p, ErrorCode.NONE);
      }
    }
    return out;
  }

  addOffsets(transactionalId: string, producerId: number, epoch: number, groupId: string): number {
    const tx = this.find(transactionalId, producerId, epoch);
    if (typeof tx === 'number') return tx;
    tx.groups.add(groupId);
    this.begin(tx);
    return ErrorCode.NONE;
  }

  /** TxnOffsetCommit: kept with the transaction, applied by a commit, dropped by an abort. */
  commitOffsets(transactionalId: string, producerId: number, epoch: number, groupId: string, offsets: PendingOffset[]): number {
    const tx = this.find(transactionalId, producerId, epoch);
    if (typeof tx === 'number') return tx;
    if (!tx.groups.has(groupId)) return ErrorCode.INVALID_TXN_STATE;
    tx.offsets.set(groupId, [...(tx.offsets.get(groupId) ?? []), ...offsets]);
    return ErrorCode.NONE;
  }

  /**
   * May this producer write transactional records to the partition? Kafka answers a partition
   * that was not added to the transaction (or a stale producer) with an error, never appends.
   */
  checkProduce(transactionalId: string, producerId: number, epoch: number, topic: string, partition: number): number {
    const tx = this.find(transactionalId, producerId, epoch);
    if (typeof tx === 'number') return tx;
    return tx.partitions.has(`${topic}\0${partition}`) ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE;
  }

  endTxn(transactionalId: string, producerId: number, epoch: number, commit: boolean): number {
    const tx = this.find(transactionalId, producerId, epoch);
    if (typeof tx === 'number') return tx;
    if (tx.partitions.size === 0 && tx.groups.size === 0) return ErrorCode.INVALID_TXN_STATE;
    this.end(tx, commit);
    return ErrorCode.NONE;
  }

  /** Writes the markers, applies or drops the offsets, and forgets the partitions. */
  private end(tx: Transaction, commit: boolean): void {
    if (tx.timer) clearTimeout(tx.timer);
    tx.timer = null;
    const type = commit ? ControlType.COMMIT : ControlType.ABORT;
    for (const key of tx.partitions) {
      const [topic, partition] = key.split('\0');
      const log = this.topics.partition(topic, Number(partition));
      if (!log) continue; // deleted meanwhile
      log.appendMarker(BigInt(tx.producerId), tx.epoch, type);
      log.notify();
    }
    if (commit) for (const [group, entries] of tx.offsets) this.offsets.commit(group, entries);
    tx.partitions.clear();
    tx.groups.clear();
    tx.offsets.clear();
  }

  close(): void {
    for (const tx of this.byId.values()) if (tx.timer) clearTimeout(tx.timer);
  }
}
