/**
 * Who may call what: bearer tokens with roles, and the table of the least role each RPC
 * needs. Pure decisions only; server.ts applies them to every call, client.ts attaches the
 * token. Every method a server registers must have an entry here (startGrpcServer refuses to
 * start otherwise, and a test checks every RPC in proto/), so a new RPC cannot be forgotten.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { status } from '@grpc/grpc-js';

/**
 * Roles in ascending privilege: an operator starts, stops and watches jobs and reads tables;
 * a service also makes the calls the services make to each other (reports, commits, leases,
 * job state); an admin also creates and drops databases, tables, sources and jobs.
 */
export const ROLES = ['operator', 'service', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Health is answered to anyone: probes carry no token. */
export const PUBLIC = 'public';
export type Access = Role | typeof PUBLIC;

const RANK: Record<Role, number> = { operator: 1, service: 2, admin: 3 };

/** The least role each method needs, by its gRPC path. */
export const METHOD_ROLES: Readonly<Record<string, Access>> = {
  '/sluice.v1.CatalogService/CreateDatabase': 'admin',
  '/sluice.v1.CatalogService/GetDatabase': 'operator',
  '/sluice.v1.CatalogService/ListDatabases': 'operator',
  '/sluice.v1.CatalogService/DropDatabase': 'admin',
  '/sluice.v1.CatalogService/CreateTable': 'admin',
  '/sluice.v1.CatalogService/GetTable': 'operator',
  '/sluice.v1.CatalogService/ListTables': 'operator',
  '/sluice.v1.CatalogService/DropTable': 'admin',
  // Schema evolution is part of a commit (the commit service adds the stream's new fields).
  '/sluice.v1.CatalogService/UpdateSchema': 'service',
  '/sluice.v1.CatalogService/CreateSource': 'admin',
  '/sluice.v1.CatalogService/GetSource': 'operator',
  '/sluice.v1.CatalogService/ListSources': 'operator',
  '/sluice.v1.CatalogService/DeleteSource': 'admin',
  '/sluice.v1.CatalogService/CreateJob': 'admin',
  '/sluice.v1.CatalogService/GetJob': 'operator',
  '/sluice.v1.CatalogService/ListJobs': 'operator',
  // The state ingestion records as it runs a job; operators change it through IngestionService.
  '/sluice.v1.CatalogService/UpdateJobState': 'service',
  '/sluice.v1.CatalogService/DeleteJob': 'admin',
  '/sluice.v1.CatalogService/CommitTable': 'service',
  // Where a keyed table's changed keys have their rows: read by the table's commit coordinator.
  '/sluice.v1.CatalogService/LookupRowKeys': 'service',
  '/sluice.v1.CatalogService/GetCommittedOffsets': 'operator',
  // Where a job's first commits must start: written by ingestion as it starts the job.
  '/sluice.v1.CatalogService/RecordJobStart': 'service',
  '/sluice.v1.CatalogService/ListSnapshots': 'operator',
  '/sluice.v1.CatalogService/AcquireCommitLease': 'service',
  '/sluice.v1.CatalogService/AcquireSchedulerLease': 'service',
  // Backfill and rerun run an existing job's instances, as StartJob runs a job; the
  // scheduler's own firing needs the scheduler lease's epoch besides.
  '/sluice.v1.CatalogService/CreateJobInstances': 'operator',
  '/sluice.v1.CatalogService/ListJobInstances': 'operator',
  '/sluice.v1.CatalogService/RecordLateRecords': 'service',
  '/sluice.v1.CommitService/ReportDataFiles': 'service',
  '/sluice.v1.CommitService/TriggerFlush': 'service',
  '/sluice.v1.CommitService/GetCommitStatus': 'operator',
  '/sluice.v1.IngestionService/StartJob': 'operator',
  '/sluice.v1.IngestionService/StopJob': 'operator',
  '/sluice.v1.IngestionService/PauseJob': 'operator',
  '/sluice.v1.IngestionService/ResumeJob': 'operator',
  '/sluice.v1.IngestionService/GetJobStatus': 'operator',
  '/sluice.v1.IngestionService/ListJobStatuses': 'operator',
  '/sluice.v1.TransformationService/Transform': 'service',
  '/sluice.v1.TransformationService/InferSchema': 'operator',
  '/sluice.v1.TransformationService/PreviewMapping': 'operator',
  '/grpc.health.v1.Health/Check': PUBLIC,
  '/grpc.health.v1.Health/Watch': PUBLIC,
  '/grpc.health.v1.Health/List': PUBLIC,
  // Reflection describes the API (grpcurl list/describe): anyone with a token may read it.
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': 'operator',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': 'operator',
};

/** A token file entry could not be read; `line` is 1-based. */
export class TokenFileError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'TokenFileError';
  }
}

/** Plain tokens shorter than this are refused: they could be guessed. */
export const MIN_TOKEN_LENGTH = 16;
const HASHED = /^sha256:([0-9a-f]{64})$/i;

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** The SHA-256 form of a token, as a tokens file may hold it instead of the token itself. */
export function hashToken(token: string): string {
  return `sha256:${digest(token).toString('hex')}`;
}

/** The tokens a server accepts, each with its role; only their SHA-256 digests are kept. */
export class TokenTable {
  private constructor(private readonly entries: readonly { role: Role; digest: Buffer }[]) {}

  /**
   * Parses a tokens file: one `<role> <token>` per line, the token either as is (at least 16
   * characters) or as `sha256:<64 hex digits>`; blank lines and lines starting with # are skipped.
   */
  static parse(text: string): TokenTable {
    const entries: { role: Role; digest: Buffer }[] = [];
    const lines = text.split(/\r?\n/);
    for (const [index, raw] of lines.entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const fields = line.split(/\s+/);
      if (fields.length !== 2) throw new TokenFileError(index + 1, 'expected "<role> <token>"');
      const [role, token] = fields;
      if (!(ROLES as readonly string[]).includes(role))
        throw new TokenFileError(index + 1, `unknown role ${JSON.stringify(role)} (one of ${ROLES.join(', ')})`);
      const hashed = HASHED.exec(token);
      if (!hashed && token.length < MIN_TOKEN_LENGTH)
        throw new TokenFileError(index + 1, `the token is shorter than ${MIN_TOKEN_LENGTH} characters`);
      const entry = { role: role as Role, digest: hashed ? Buffer.from(hashed[1], 'hex') : digest(token) };
      const clash = entries.find((e) => e.digest.equals(entry.digest));
      if (clash) throw new TokenFileError(index + 1, `the same token is listed twice (as ${clash.role} and ${entry.role})`);
      entries.push(entry);
    }
    if (entries.length === 0) throw new TokenFileError(lines.length, 'the file lists no token');
    return new TokenTable(entries);
  }

  /**
   * The role of a presented token, or undefined. Digests of equal length are compared in
   * constant time, and every entry is compared, so the time taken says nothing about the token.
   */
  roleOf(token: string): Role | undefined {
    const presented = digest(token);
    let found: Role | undefined;
    for (const entry of this.entries) if (timingSafeEqual(entry.digest, presented)) found = entry.role;
    return found;
  }
}

export type Decision = { allowed: true; role?: Role } | { allowed: false; code: status; details: string };

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Whether a call of `path` with this `authorization` metadata may proceed under `tokens`.
 * A missing, malformed or unknown token is UNAUTHENTICATED; a known token whose role ranks
 * below the method's is PERMISSION_DENIED; a method without an entry is denied to everyone.
 */
export function authorize(path: string, authorization: string | undefined, tokens: TokenTable): Decision {
  const method = path.slice(1);
  const access = METHOD_ROLES[path];
  if (access === PUBLIC) return { allowed: true };
  if (access === undefined) return { allowed: false, code: status.PERMISSION_DENIED, details: `${method} has no access rule` };
  if (authorization === undefined || authorization === '')
    return { allowed: false, code: status.UNAUTHENTICATED, details: `${method} needs a bearer token (set SLUICE_TOKEN)` };
  const bearer = BEARER.exec(authorization);
  if (!bearer)
    return { allowed: false, code: status.UNAUTHENTICATED, details: 'the authorization metadata is not of the form "Bearer <token>"' };
  const role = tokens.roleOf(bearer[1]);
  if (!role) return { allowed: false, code: status.UNAUTHENTICATED, details: `${method}: the bearer token is not valid` };
  if (RANK[role] < RANK[access])
    return { allowed: false, code: status.PERMISSION_DENIED, details: `${method} needs the ${access} role; the token's role is ${role}` };
  return { allowed: true, role };
}
