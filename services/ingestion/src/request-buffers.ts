/**
 * The pool of one stream's encoded TransformRequests (shared/src/buffer-pool.ts). A fetch
 * round's batch is about a megabyte; a fresh buffer for each cost the page faults of first
 * touching it (most of the batch encoder's copying time) and brought V8's mark-compacts on.
 *
 * Each request is framed in place (shared/src/grpc/framing.ts): grpc-js sends the buffer itself,
 * and reads it until the HTTP/2 stream has handed it to the socket. A buffer is given back only
 * from the write's callback, without an error, which on our clients (no retry buffer) comes
 * after that. A write that fails or never completes (a cancelled stream) keeps its buffer out of
 * the pool.
 */

import { BufferPool } from '#shared/buffer-pool.js';

/** Smaller requests (covers only, a few records) come from Node's shared pool and are not kept. */
const MIN_KEPT_BYTES = 64 << 10;
/**
 * Bytes of free buffers kept. Buffers come back once written, and a stream's writes wait for
 * transformation's HTTP/2 window, so up to the in-flight budget (INGESTION_IN_FLIGHT_BYTES,
 * 32 MiB by default) of them may be out at once; keeping only four, as before the requests were
 * framed in place, made every other batch a fresh megabyte.
 */
const MAX_FREE_BYTES = 32 << 20;

/** A stream's request buffers. */
export const requestBuffers = (): BufferPool => new BufferPool(MIN_KEPT_BYTES, MAX_FREE_BYTES);
