/**
 * Errors raised by the Iceberg module. `kind` lets callers map them to status codes:
 * `invalid` is a bad request (INVALID_ARGUMENT), `conflict` a state that forbids the change
 * (FAILED_PRECONDITION), `corrupt` a file that does not follow the spec. `field` names the
 * offending input (a schema path, a metadata key, an Avro field path) when there is one.
 */
export type IcebergErrorKind = 'invalid' | 'conflict' | 'corrupt' | 'not-found';

export class IcebergError extends Error {
  override readonly name: string = 'IcebergError';
  constructor(
    readonly kind: IcebergErrorKind,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const invalid = (message: string, field?: string) => new IcebergError('invalid', message, field);
export const conflict = (message: string, field?: string) => new IcebergError('conflict', message, field);
export const corrupt = (message: string, field?: string) => new IcebergError('corrupt', message, field);
