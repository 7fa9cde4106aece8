/**
 * A cursor over untyped YAML/JSON that knows where it is, so every complaint names the path of
 * the bad key (`source.startFrom.offsets.3`), and keys nobody read are reported as unknown
 * (with a suggestion) instead of being silently ignored.
 */
export class JobSpecError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(path ? `${path}: ${problem}` : problem);
    this.name = 'JobSpecError';
  }
}

type Plain = Record<string, unknown>;

const describe = (value: unknown): string => {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
};

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

export class SpecReader {
  private readonly seen = new Set<string>();

  constructor(
    private readonly value: Plain,
    readonly path: string,
  ) {}

  static root(value: unknown): SpecReader {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new JobSpecError('', `a job spec must be a mapping of keys to values, not ${describe(value)}`);
    }
    return new SpecReader(value as Plain, '');
  }

  at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.value[key];
  }

  fail(key: string, problem: string): never {
    throw new JobSpecError(this.at(key), problem);
  }

  string(key: string, options: { required: true; pattern?: RegExp; hint?: string }): string;
  string(key: string, options?: { required?: false; pattern?: RegExp; hint?: string }): string | undefined;
  string(key: string, options: { required?: boolean; pattern?: RegExp; hint?: string } = {}): string | undefined {
    const value = this.raw(key);
    if (value === undefined || value === null) {
      if (options.required) this.fail(key, 'is required');
      return undefined;
    }
    if (typeof value !== 'string' && typeof value !== 'number') this.fail(key, `must be a string, not ${describe(value)}`);
    const text = String(value);
    if (options.pattern && !options.pattern.test(text))
      this.fail(key, `${JSON.stringify(text)} ${options.hint ?? `does not match ${options.pattern}`}`);
    return text;
  }

  choice<T extends string>(key: string, choices: Record<string, T>, fallback: T): T {
    const text = this.string(key);
    if (text === undefined) return fallback;
    const found = Object.entries(choices).find(([name]) => name.toLowerCase() === text.toLowerCase());
    if (!found) this.fail(key, `${JSON.stringify(text)} is not one of ${Object.keys(choices).join(', ')}`);
    return found[1];
  }

  integer(key: string, options: { min?: number; max?: number } = {}): number | undefined {
    const value = this.raw(key);
    if (value === undefined || value === null) return undefined;
    const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) this.fail(key, `must be a whole number, not ${describe(value)}`);
    if (options.min !== undefined && n < options.min) this.fail(key, `must be at least ${options.min}, not ${n}`);
    if (options.max !== undefined && n > options.max) this.fail(key, `must be at most ${options.max}, not ${n}`);
    return n;
  }

  boolean(key: string): boolean | undefined {
    const value = this.raw(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') this.fail(key, `must be true or false, not ${describe(value)}`);
    return value;
  }

  object(key: string, options: { required: true }): SpecReader;
  object(key: string, options?: { required?: false }): SpecReader | undefined;
  object(key: string, options: { required?: boolean } = {}): SpecReader | undefined {
    const value = this.raw(key);
    if (value === undefined || value === null) {
      if (options.required) this.fail(key, 'is required');
      return undefined;
    }
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(key, `must be a mapping, not ${describe(value)}`);
    return new SpecReader(value as Plain, this.at(key));
  }

  list(key: string): { reader: SpecReader; value: unknown; path: string }[] {
    const value = this.raw(key);
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(key, `must be a list, not ${describe(value)}`);
    return value.map((item, index) => {
      const path = `${this.at(key)}.${index}`;
      const reader = item !== null && typeof item === 'object' && !Array.isArray(item) ? new SpecReader(item as Plain, path) : undefined;
      return { reader: reader as SpecReader, value: item, path };
    });
  }

  /** Entries of a free-form mapping (properties, per-partition offsets). */
  entries(key: string): [string, unknown, string][] {
    const value = this.raw(key);
    if (value === undefined || value === null) return [];
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(key, `must be a mapping, not ${describe(value)}`);
    return Object.entries(value as Plain).map(([k, v]) => [k, v, `${this.at(key)}.${k}`]);
  }

  /** Refuses keys that were never read: a typo must not silently fall back to a default. */
  finish(): void {
    for (const key of Object.keys(this.value)) {
      if (this.seen.has(key)) continue;
      const known = [...this.seen];
      const close = known.map((k) => [k, editDistance(k.toLowerCase(), key.toLowerCase())] as const).sort((a, b) => a[1] - b[1])[0];
      const hint = close && close[1] <= 2 ? ` (did you mean ${close[0]}?)` : known.length ? ` (known keys: ${known.join(', ')})` : '';
      throw new JobSpecError(this.at(key), `is not a known key${hint}`);
    }
  }
}
