import { ErrorCode } from '../protocol/errors.js';
import { defineApi, type ApiHandler } from './types.js';

interface Req {
  clientSoftwareName: string | null;
}
interface Res {
  errorCode: number;
  apis: readonly ApiHandler[];
}

/**
 * ApiVersions (key 18), v0-v3. v3 is the one flexible (compact, tagged-field) API implemented:
 * librdkafka opens with it. Per KIP-511 the response header stays v0 even for v3, and a request
 * above v3 gets a v0-format body with UNSUPPORTED_VERSION (see the connection handler).
 */
export function apiVersionsApi(all: () => readonly ApiHandler[]) {
  return defineApi<Req, Res>({
    apiKey: 18,
    name: 'ApiVersions',
    minVersion: 0,
    maxVersion: 3,
    flexibleFrom: 3,
    decode(r, version) {
      if (version < 3) return { clientSoftwareName: null };
      const clientSoftwareName = r.compactNullableString();
      r.compactNullableString(); // client software version
      r.skipTaggedFields();
      return { clientSoftwareName };
    },
    handle: () => ({ errorCode: ErrorCode.NONE, apis: all() }),
    encode(w, res, version) {
      encodeApiVersions(w, res.errorCode, res.apis, version);
    },
    errorResponse: (_req, errorCode) => ({ errorCode, apis: all() }),
  });
}

export function encodeApiVersions(
  w: import('../protocol/writer.js').Writer,
  errorCode: number,
  apis: readonly ApiHandler[],
  version: number,
): void {
  w.int16(errorCode);
  if (version >= 3) {
    w.uvarint(apis.length + 1);
    for (const a of apis) w.int16(a.apiKey).int16(a.minVersion).int16(a.maxVersion).emptyTaggedFields();
    w.int32(0).emptyTaggedFields();
    return;
  }
  w.array(apis, (w, a) => w.int16(a.apiKey).int16(a.minVersion).int16(a.maxVersion));
  if (version >= 1) w.int32(0);
}
