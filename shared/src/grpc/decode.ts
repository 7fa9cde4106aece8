/**
 * Requests that cannot be decoded get INVALID_ARGUMENT naming the field, not grpc-js's
 * "INTERNAL: Error deserializing request". Our generated code (ts-proto, forceLong=number)
 * throws on a 64-bit integer beyond 2^53, which a caller can send in any int64 field; the
 * message says only "Value is larger than Number.MAX_SAFE_INTEGER". So when decoding fails,
 * the request bytes are walked once more with the proto descriptors proto-loader already
 * loaded for reflection, and the first 64-bit integer out of JavaScript's exact range is
 * named by its field path (`job.commit_interval_ms: 1000000000000000000 is out of range`).
 *
 * The deserializer never throws: it hands an UndecodableRequest to the server's interceptor
 * (server.ts), which answers the call with its status before any handler sees it.
 */
import { status } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { SluiceError } from '../errors.js';

/** What a guarded deserializer returns for bytes its message type cannot be decoded from. */
export class UndecodableRequest {
  constructor(readonly error: SluiceError) {}
}

interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}

interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
}

const INT64_TYPES = new Set(['TYPE_INT64', 'TYPE_UINT64', 'TYPE_SINT64', 'TYPE_FIXED64', 'TYPE_SFIXED64']);
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** A deserializer that returns an UndecodableRequest instead of throwing. */
export function guardedDeserializer(
  deserialize: (bytes: Buffer) => unknown,
  typeName: string,
  types: PackageDefinition,
): (bytes: Buffer) => unknown {
  return (bytes) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      return new UndecodableRequest(decodeFailure(bytes, typeName, types, err as Error));
    }
  };
}

/** The error for a request that failed to decode: the out-of-range field when there is one. */
export function decodeFailure(bytes: Uint8Array, typeName: string, types: PackageDefinition, cause: Error): SluiceError {
  let found: { path: string; value: bigint } | undefined;
  try {
    found = outOfRangeInteger(bytes, typeName, types, '');
  } catch {
    // Bytes that are not even well-formed protobuf: the generic message below.
  }
  if (found)
    return new SluiceError(
      status.INVALID_ARGUMENT,
      `${found.path}: ${found.value} is out of range (a whole number from -${MAX_EXACT} to ${MAX_EXACT})`,
      { field: found.path },
    );
  const reason = cause.message.length > 120 ? `${cause.message.slice(0, 120)}…` : cause.message;
  return new SluiceError(status.INVALID_ARGUMENT, `the request is not a valid ${typeName.split('.').pop()}: ${reason}`);
}

/** The first 64-bit integer field (depth first, in wire order) whose value a JavaScript number cannot hold exactly. */
export function outOfRangeInteger(
  bytes: Uint8Array,
  typeName: string,
  types: PackageDefinition,
  path: string,
): { path: string; value: bigint } | undefined {
  const message = (types[typeName] as { type?: MessageDescriptor } | undefined)?.type;
  if (!message) return undefined;
  const byNumber = new Map(message.field.map((f) => [f.number, f]));
  const seen = new Map<number, number>();
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = byNumber.get(number);
    if (!field) {
      reader.skip(wireType, number);
      continue;
    }
    const index = seen.get(number) ?? 0;
    seen.set(number, index + 1);
    const repeated = field.label === 'LABEL_REPEATED';
    const at = `${path ? `${path}.` : ''}${field.name}${repeated ? `.${index}` : ''}`;
    if (INT64_TYPES.has(field.type)) {
      const values = wireType === WireType.LengthDelimited ? packed(reader.bytes(), field.type) : [int64(reader, field.type)];
      const bad = values.find((v) => v > MAX_EXACT || v < -MAX_EXACT);
      if (bad !== undefined) return { path: repeated ? `${path ? `${path}.` : ''}${field.name}` : at, value: bad };
    } else if (field.type === 'TYPE_MESSAGE' && wireType === WireType.LengthDelimited) {
      const found = outOfRangeInteger(reader.bytes(), resolve(field.typeName, typeName, types), types, at);
      if (found) return found;
    } else {
      reader.skip(wireType, number);
    }
  }
  return undefined;
}

function int64(reader: BinaryReader, type: string): bigint {
  switch (type) {
    case 'TYPE_UINT64':
      return BigInt(reader.uint64());
    case 'TYPE_SINT64':
      return BigInt(reader.sint64());
    case 'TYPE_FIXED64':
      return BigInt(reader.fixed64());
    case 'TYPE_SFIXED64':
      return BigInt(reader.sfixed64());
    default:
      return BigInt(reader.int64());
  }
}

function packed(bytes: Uint8Array, type: string): bigint[] {
  const reader = new BinaryReader(bytes);
  const values: bigint[] = [];
  while (reader.pos < reader.len) values.push(int64(reader, type));
  return values;
}

/** A field's type name as proto-loader keys it: relative names are looked up from the enclosing scopes outwards. */
function resolve(name: string, from: string, types: PackageDefinition): string {
  if (name.startsWith('.')) return name.slice(1);
  const scope = from.split('.');
  while (scope.length > 0) {
    const candidate = `${scope.join('.')}.${name}`;
    if (candidate in types) return candidate;
    scope.pop();
  }
  return name;
}
