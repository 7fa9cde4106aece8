/**
 * Storage failures carry the location they concern and a coarse kind, so callers can map
 * them (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT) without parsing messages.
 */
export type StorageErrorKind = 'not-found' | 'already-exists' | 'invalid-location' | 'unsupported-scheme' | 'io';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    readonly location: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
