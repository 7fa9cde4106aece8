import { ErrorCode } from '../protocol/errors.js';
import type { BatchInfo } from '../protocol/record-batch.js';

interface RecentBatch {
  baseSequence: number;
  recordCount: number;
  baseOffset: number;
}

interface ProducerPartitionState {
  epoch: number;
  nextSequence: number;
  recent: RecentBatch[];
}

/** Kafka keeps the last five batches per producer and partition for duplicate detection. */
const RECENT_BATCHES = 5;

export type SequenceCheck = { kind: 'append' } | { kind: 'duplicate'; baseOffset: number } | { kind: 'error'; errorCode: number };

/**
 * Idempotent-producer bookkeeping: hands out producer ids and checks batch sequence numbers per
 * (topic, partition, producer). A retried batch is answered with its original offset instead of
 * being appended twice. In memory only: a restarted broker forgets producer state.
 */
export class ProducerRegistry {
  private nextProducerId = 1;
  private readonly state = new Map<string, ProducerPartitionState>();

  initProducerId(): { producerId: number; producerEpoch: number } {
    return { producerId: this.nextProducerId++, producerEpoch: 0 };
  }

  check(topic: string, partition: number, batch: BatchInfo): SequenceCheck {
    if (batch.producerId < 0n) return { kind: 'append' };
    const s = this.state.get(key(topic, partition, batch.producerId));
    if (!s || batch.producerEpoch > s.epoch) return { kind: 'append' };
    if (batch.producerEpoch < s.epoch) return { kind: 'error', errorCode: ErrorCode.INVALID_PRODUCER_EPOCH };
    const dup = s.recent.find((b) => b.baseSequence === batch.baseSequence && b.recordCount === batch.recordCount);
    if (dup) return { kind: 'duplicate', baseOffset: dup.baseOffset };
    if (batch.baseSequence !== s.nextSequence) return { kind: 'error', errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER };
    return { kind: 'append' };
  }

  recordAppend(topic: string, partition: number, batch: BatchInfo, baseOffset: number): void {
    if (batch.producerId < 0n) return;
    const k = key(topic, partition, batch.producerId);
    let s = this.state.get(k);
    if (!s || batch.producerEpoch > s.epoch) this.state.set(k, (s = { epoch: batch.producerEpoch, nextSequence: 0, recent: [] }));
    s.nextSequence = (batch.baseSequence + batch.recordCount) % 2 ** 31;
    s.recent.push({ baseSequence: batch.baseSequence, recordCount: batch.recordCount, baseOffset });
    if (s.recent.length > RECENT_BATCHES) s.recent.shift();
  }

  forgetTopic(topic: string): void {
    for (const k of this.state.keys()) if (k.startsWith(`${topic}\0`)) this.state.delete(k);
  }
}

function key(topic: string, partition: number, producerId: bigint): string {
  return `${topic}\0${partition}\0${producerId}`;
}
