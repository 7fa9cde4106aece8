import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { API_BY_KEY, API_VERSIONS_KEY, APIS } from '../apis/registry.js';
import { encodeApiVersions } from '../apis/api-versions.js';
import type { BrokerState, RequestContext } from '../apis/types.js';
import { ErrorCode, MalformedRequestError } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';
import type { FaultState } from './faults.js';

/** apiKey + apiVersion + correlationId + clientId length */
const MIN_HEADER_BYTES = 10;
/** Pipelined requests queued beyond this pause reading from the socket (Kafka mutes the channel). */
const MAX_QUEUED_FRAMES = 64;

export interface ConnectionHost {
  state: BrokerState;
  faults: FaultState;
  maxFrameBytes: number;
  /** Unexpected failures (bugs, I/O errors); protocol garbage is not reported. */
  onError(message: string): void;
}

interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string;
}

/**
 * One client connection. Frames are size-prefixed; requests are handled strictly one at a time
 * in arrival order, as Kafka does, so responses leave in request order. Anything unparseable
 * closes this connection only.
 */
export class Connection {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly frames: Buffer[] = [];
  private busy = false;
  private readonly aborter = new AbortController();

  constructor(
    private readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => this.close()); // resets are routine; the socket is gone either way
    socket.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.aborter.signal.aborted;
  }

  close(): void {
    if (!this.closed) this.aborter.abort();
    this.socket.destroy();
    this.chunks = [];
    this.frames.length = 0;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const size = this.peekSize();
      if (size < MIN_HEADER_BYTES || size > this.host.maxFrameBytes) {
        this.close();
        return;
      }
      if (this.buffered < 4 + size) break;
      this.frames.push(this.take(4 + size).subarray(4));
    }
    if (this.frames.length > MAX_QUEUED_FRAMES) this.socket.pause();
    if (!this.busy && this.frames.length > 0) void this.drain();
  }

  private peekSize(): number {
    if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].readInt32BE(0);
  }

  /** Removes n bytes from the front of the buffered chunks, copying only when they span chunks. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.frames.length > 0 && !this.closed) {
        await this.process(this.frames.shift()!);
        if (this.socket.isPaused() && this.frames.length <= MAX_QUEUED_FRAMES / 2) this.socket.resume();
      }
    } catch (err) {
      if (!(err instanceof MalformedRequestError))
        this.host.onError(`connection from ${this.socket.remoteAddress}: ${(err as Error).stack ?? err}`);
      this.close();
    } finally {
      this.busy = false;
    }
  }

  private async process(frame: Buffer): Promise<void> {
    const r = new Reader(frame);
    const header: RequestHeader = {
      apiKey: r.int16(),
      apiVersion: r.int16(),
      correlationId: r.int32(),
      clientId: r.nullableString() ?? '',
    };
    const api = API_BY_KEY.get(header.apiKey);
    if (!api) throw new MalformedRequestError(`unknown API key ${header.apiKey}`, 0);
    if (header.apiVersion < api.minVersion || header.apiVersion > api.maxVersion) {
      if (header.apiKey === API_VERSIONS_KEY) return this.rejectApiVersions(header);
      throw new MalformedRequestError(`${api.name} v${header.apiVersion} is not supported (v${api.minVersion}-v${api.maxVersion})`, 2);
    }
    const flexible = api.flexibleFrom !== undefined && header.apiVersion >= api.flexibleFrom;
    if (flexible) r.skipTaggedFields(); // request header v2
    const req = api.decode(r, header.apiVersion);
    const ctx: RequestContext = {
      broker: this.host.state,
      version: header.apiVersion,
      clientId: header.clientId,
      clientHost: this.socket.remoteAddress ?? '',
      signal: this.aborter.signal,
    };
    const injected = this.host.faults.takeFailure(header.apiKey);
    const res = injected === null ? await api.handle(req, ctx) : api.errorResponse(req, injected, ctx);
    if (res === null) return; // acks=0 produce
    const w = new Writer();
    api.encode(w, res, header.apiVersion);
    // Response header v1 for flexible versions; ApiVersions keeps v0 (KIP-511).
    await this.respond(header.correlationId, w, flexible && header.apiKey !== API_VERSIONS_KEY);
  }

  /** KIP-511: a too-new ApiVersions gets a v0 body with UNSUPPORTED_VERSION and our ranges. */
  private async rejectApiVersions(header: RequestHeader): Promise<void> {
    const w = new Writer();
    encodeApiVersions(w, ErrorCode.UNSUPPORTED_VERSION, APIS, 0);
    await this.respond(header.correlationId, w);
  }

  private async respond(correlationId: number, body: Writer, taggedHeader = false): Promise<void> {
    const delay = this.host.faults.responseDelayMs;
    if (delay > 0) await sleep(delay, undefined, { signal: this.aborter.signal }).catch(() => undefined);
    if (this.closed) return;
    const head = Buffer.alloc(taggedHeader ? 9 : 8); // with tagged fields: an empty set, 0
    head.writeInt32BE(body.length + head.length - 4, 0);
    head.writeInt32BE(correlationId, 4);
    const chunks = body.finish();
    this.socket.cork();
    let ok = this.socket.write(head);
    for (const c of chunks) ok = this.socket.write(c);
    this.socket.uncork();
    // Backpressure: a slow reader must not make the broker buffer response after response.
    if (!ok && !this.closed) await this.drained();
  }

  /** Resolves when the socket has flushed its buffer or the connection is gone. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.aborter.signal.removeEventListener('abort', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.aborter.signal.addEventListener('abort', done);
    });
  }
}
