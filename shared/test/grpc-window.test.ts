/**
 * Our gRPC servers grant clients an HTTP/2 receive window of RECEIVE_WINDOW_BYTES per stream
 * and twice that per connection (server.ts), instead of HTTP/2's 64 KiB: read off a real
 * HTTP/2 connection, as the client sees it. The window is set through grpc-js internals, so a
 * grpc-js that moves them fails here (or at start-up) rather than silently slowing the
 * Transform stream down.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { RECEIVE_WINDOW_BYTES, type RunningGrpcServer } from '#shared/grpc/server.js';
import { startTransformationServer } from '#test-support/services.js';
import { waitFor } from '#test-support/wait.js';

const HTTP2_DEFAULT_WINDOW = 65_535;

describe('gRPC server receive window', () => {
  let server: RunningGrpcServer;
  before(async () => {
    server = await startTransformationServer();
  });
  after(() => server.stop(1000));

  it('is RECEIVE_WINDOW_BYTES per stream and twice that per connection, not HTTP/2’s 64 KiB', async () => {
    assert.ok(RECEIVE_WINDOW_BYTES > HTTP2_DEFAULT_WINDOW);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
      assert.equal(session.remoteSettings.initialWindowSize, RECEIVE_WINDOW_BYTES, 'the window of each stream');
      // The connection's window grows by a WINDOW_UPDATE the server sends once it has the session.
      const window = await waitFor('the connection window to grow', () => {
        const size = session.state.remoteWindowSize ?? 0;
        return size > HTTP2_DEFAULT_WINDOW ? size : false;
      });
      assert.equal(window, 2 * RECEIVE_WINDOW_BYTES, 'the window of the connection');
    } finally {
      session.close();
    }
  });
});
