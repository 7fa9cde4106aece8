/**
 * One TCP connection to a Kafka broker for ingestion's own requests (Fetch, Metadata v10+):
 * size-prefixed frames, correlation ids, requests pipelined and answered in order.
 *
 * Wire grammar (big-endian):
 *
 *   Request         => size: int32, header, body
 *   header v1       => api_key: int16, api_version: int16, correlation_id: int32,
 *                      client_id: string (int16 length)
 *   header v2       => header v1, tagged fields (0: none); for flexible versions
 *   Response        => size: int32, correlation_id: int32, body (flexible: header tagged
 *                      fields first, which the caller reads)
 */
import { connect, type Socket } from 'node:net';
import { ReceiveBuffer } from './receive-buffer.js';

/** Larger frames are a broken stream, not a response (fetches are capped far below). */
const MAX_FRAME_BYTES = 512 << 20;

interface Pending {
  readonly resolve: (body: Buffer) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout | null;
}

export class BrokerConnection {
  private nextCorrelationId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly received = new ReceiveBuffer();
  /** The size of the frame being received (after its size field); -1 until its size has arrived. */
  private frameSize = -1;
  private failure: Error | null = null;
  private readonly clientId: Buffer;
  private readonly socket: Socket;

  private constructor(
    host: string,
    port: number,
    readonly address: string,
    clientId: string,
  ) {
    this.clientId = Buffer.from(clientId, 'utf8');
    // The socket reads into the receive buffer itself (no 'data' events, no chunk per read).
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => this.readRoom(),
        callback: (n) => {
          this.onRead(n);
          return true; // keep reading
        },
      },
    });
    this.socket.on('error', (err) => this.fail(new Error(`connection to ${address} failed: ${err.message}`)));
    this.socket.on('close', () => this.fail(new Error(`connection to ${address} closed`)));
  }

  static connect(host: string, port: number, opts: { clientId: string; connectTimeoutMs: number }): Promise<BrokerConnection> {
    const conn = new BrokerConnection(host, port, `${host}:${port}`, opts.clientId);
    const { socket, address } = conn;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.close();
        reject(new Error(`Connection timeout: no connection to ${address} within ${opts.connectTimeoutMs} ms`));
      }, opts.connectTimeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(new Error(`connection to ${address} failed: ${err.message}`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(conn);
      });
    });
  }

  get closed(): boolean {
    return this.failure !== null;
  }

  /**
   * Sends one request and resolves to its response after the correlation id. Rejects when the
   * connection fails or closes first, or no answer comes within timeoutMs (the connection is
   * then closed: later answers could no longer be matched with certainty).
   *
   * The response is a view of the connection's receive buffer, not a copy: it stays valid until
   * the connection's next request (the answer to that one may be read into the same bytes).
   * Requests sent together (pipelined) keep their answers valid until one sent after them all.
   */
  request(apiKey: number, version: number, body: Buffer, opts: { flexible?: boolean; timeoutMs?: number } = {}): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = this.nextCorrelationId++;
    const headerBytes = 10 + this.clientId.length + (opts.flexible ? 1 : 0);
    const head = Buffer.allocUnsafe(4 + headerBytes);
    head.writeInt32BE(headerBytes + body.length, 0);
    head.writeInt16BE(apiKey, 4);
    head.writeInt16BE(version, 6);
    head.writeInt32BE(correlationId, 8);
    head.writeInt16BE(this.clientId.length, 12);
    this.clientId.copy(head, 14);
    if (opts.flexible) head[head.length - 1] = 0; // no tagged fields
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs;
      const timer =
        timeoutMs === undefined
          ? null
          : setTimeout(() => this.fail(new Error(`no answer from ${this.address} within ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer });
      this.socket.write(head);
      this.socket.write(body);
    });
  }

  close(): void {
    this.fail(new Error(`connection to ${this.address} closed`));
  }

  /**
   * Where the socket reads next. Once no request waits, no answer handed out may be in use (see
   * request()), so the buffer's front can be read into again.
   */
  private readRoom(): Buffer {
    const want = this.frameSize < 0 ? 0 : this.frameSize - this.received.buffered;
    return this.received.room(this.pending.size === 0, want);
  }

  private onRead(n: number): void {
    this.received.received(n);
    while (!this.failure) {
      if (this.frameSize < 0) {
        if (this.received.buffered < 4) return;
        const size = this.received.peekInt32();
        if (size < 4 || size > MAX_FRAME_BYTES) {
          this.fail(new Error(`broker ${this.address} sent a frame of ${size} bytes: not a Kafka response`));
          return;
        }
        this.received.take(4);
        this.frameSize = size;
      }
      if (this.received.buffered < this.frameSize) return;
      const frame = this.received.take(this.frameSize);
      this.frameSize = -1;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const waiting = this.pending.get(correlationId);
    if (!waiting) {
      this.fail(new Error(`broker ${this.address} answered correlation id ${correlationId}, which no request has`));
      return;
    }
    this.pending.delete(correlationId);
    if (waiting.timer) clearTimeout(waiting.timer);
    waiting.resolve(frame.subarray(4));
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.socket.destroy();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      if (p.timer) clearTimeout(p.timer);
      p.reject(this.failure);
    }
  }
}
