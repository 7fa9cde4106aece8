import { status } from '@grpc/grpc-js';

/**
 * A failure with a gRPC status code and a message written for the user: what was wrong and
 * with what (the field, the table, the offsets). Handlers throw these; the server plumbing
 * turns them into gRPC statuses, and anything else into INTERNAL without leaking a stack.
 */
export class SluiceError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly details: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'SluiceError';
  }
}

export const invalidArgument = (message: string, details?: Record<string, string>) =>
  new SluiceError(status.INVALID_ARGUMENT, message, details);
export const notFound = (message: string, details?: Record<string, string>) => new SluiceError(status.NOT_FOUND, message, details);
export const alreadyExists = (message: string, details?: Record<string, string>) =>
  new SluiceError(status.ALREADY_EXISTS, message, details);
export const failedPrecondition = (message: string, details?: Record<string, string>) =>
  new SluiceError(status.FAILED_PRECONDITION, message, details);
export const permissionDenied = (message: string, details?: Record<string, string>) =>
  new SluiceError(status.PERMISSION_DENIED, message, details);
export const aborted = (message: string, details?: Record<string, string>) => new SluiceError(status.ABORTED, message, details);
export const unavailable = (message: string, details?: Record<string, string>) => new SluiceError(status.UNAVAILABLE, message, details);
export const unimplemented = (message: string) => new SluiceError(status.UNIMPLEMENTED, message);

/** The grpc-js error shape (ServiceError) without importing the client types everywhere. */
export function grpcCode(err: unknown): status | undefined {
  if (err instanceof SluiceError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? (code as status) : undefined;
}

/** The user-facing message of an error coming back from a gRPC call: its details, not "3 INVALID_ARGUMENT: ...". */
export function grpcMessage(err: unknown): string {
  const details = (err as { details?: unknown } | null)?.details;
  if (typeof details === 'string' && details !== '') return details;
  return err instanceof Error ? err.message : String(err);
}
