import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

export interface FileServer {
  /** http://127.0.0.1:<port> — append a path below the served directory. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves a directory read-only over HTTP on loopback, with Range support, so readers that
 * only speak HTTP (icebird, the independent Iceberg reader) can open a local warehouse.
 */
export async function serveDirectory(root: string | (() => string)): Promise<FileServer> {
  const server = createServer(async (req, res) => {
    // A function lets a test pick the directory after it knows the server's URL.
    const dir = typeof root === 'string' ? root : root();
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!path.startsWith(dir)) return void res.writeHead(403).end();
    try {
      const body = await readFile(path);
      const range = /bytes=(\d+)-(\d+)?/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      const end = range?.[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      res.writeHead(range ? 206 : 200, {
        'content-length': end - start + 1,
        ...(range ? { 'content-range': `bytes ${start}-${end}/${body.length}` } : {}),
      });
      res.end(body.subarray(start, end + 1));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
