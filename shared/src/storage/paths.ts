/**
 * Location helpers shared by every storage backend. A location is a URI (`file:///wh/t`,
 * `s3://bucket/wh/t`, `http://host/wh/t`) or an absolute POSIX path (`/wh/t`). Helpers work
 * on the textual form: joining refuses anything that could climb out of the base, and
 * overlap checks compare whole path segments, never raw string prefixes.
 */
import { StorageError } from './errors.js';

/** One path segment we are willing to append: no separators, no dot segments, no NUL. */
export function isSafeSegment(segment: string): boolean {
  return (
    segment.length > 0 &&
    segment !== '.' &&
    segment !== '..' &&
    !segment.includes('/') &&
    !segment.includes('\\') &&
    !segment.includes('\0')
  );
}

/** Removes trailing slashes (but keeps the root `/` and a bare `scheme://`). */
export function trimTrailingSlash(location: string): string {
  let end = location.length;
  while (end > 1 && location[end - 1] === '/' && !location.slice(0, end).endsWith('://')) end--;
  return location.slice(0, end);
}

/**
 * Appends relative parts (each may contain `/`-separated segments) to a base location.
 * Every segment must be safe: `..`, `.`, empty segments and backslashes are refused, so a
 * name taken from a request can never address a file outside the base.
 */
export function joinLocation(base: string, ...parts: string[]): string {
  let out = trimTrailingSlash(base);
  for (const part of parts) {
    for (const segment of part.split('/')) {
      if (!isSafeSegment(segment)) {
        throw new StorageError('invalid-location', `unsafe path segment ${JSON.stringify(segment)} in ${JSON.stringify(part)}`, base);
      }
      out += `/${segment}`;
    }
  }
  return out;
}

/** The scheme of a location (`file`, `s3`, `http`...), or `file` for an absolute path. */
export function schemeOf(location: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(location);
  if (m) return m[1].toLowerCase();
  if (location.startsWith('/')) return 'file';
  throw new StorageError('invalid-location', `location ${JSON.stringify(location)} is neither a URI nor an absolute path`, location);
}

/**
 * Normal form used for comparisons: `file:///x` and `/x` are the same place, trailing
 * slashes are dropped, dot segments are refused (a location must not hide where it points).
 */
export function normalizeLocation(location: string): string {
  const scheme = schemeOf(location);
  let rest = location;
  if (scheme === 'file' && location.startsWith('file://')) rest = location.slice('file://'.length);
  if (scheme === 'file' && !rest.startsWith('/')) {
    throw new StorageError('invalid-location', `file location ${JSON.stringify(location)} must be absolute`, location);
  }
  const head = scheme === 'file' ? '' : rest.slice(0, rest.indexOf('://') + 3);
  const path = scheme === 'file' ? rest : rest.slice(head.length);
  const segments = path.split('/');
  for (const s of segments) {
    if (s === '.' || s === '..' || s.includes('\0')) {
      throw new StorageError('invalid-location', `location ${JSON.stringify(location)} contains a dot segment`, location);
    }
  }
  const collapsed = segments.filter((s, i) => s.length > 0 || i === 0).join('/');
  return trimTrailingSlash(head + (collapsed === '' && scheme === 'file' ? '/' : collapsed));
}

/** True when `child` is `parent` itself or lies below it (whole-segment comparison). */
export function isWithin(parent: string, child: string): boolean {
  const p = normalizeLocation(parent);
  const c = normalizeLocation(child);
  if (c === p) return true;
  return c.startsWith(p.endsWith('/') ? p : `${p}/`);
}

/**
 * Two table locations overlap when one contains the other: purging or compacting one would
 * touch the other's files. `/wh/a` and `/wh/ab` do not overlap; `/wh/a` and `/wh/a/b` do.
 */
export function locationsOverlap(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** The last segment of a location (a file name). */
export function baseName(location: string): string {
  const trimmed = trimTrailingSlash(location);
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
