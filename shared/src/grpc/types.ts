import type * as grpc from '@grpc/grpc-js';

/** A ts-proto grpc-js method definition, as found in e.g. `CatalogServiceService.getTable`. */
// biome-ignore lint/suspicious/noExplicitAny: a service definition holds methods of every request and response type
export interface MethodDefinition<Req = any, Res = any> {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  requestSerialize(value: Req): Buffer;
  requestDeserialize(value: Buffer): Req;
  responseSerialize(value: Res): Buffer;
  responseDeserialize(value: Buffer): Res;
}

export type ServiceDefinition = { readonly [method: string]: MethodDefinition };

export type RequestOf<M> = M extends { requestDeserialize(value: Buffer): infer R } ? R : never;
export type ResponseOf<M> = M extends { responseDeserialize(value: Buffer): infer R } ? R : never;

type IsUnary<M> = M extends { requestStream: false; responseStream: false } ? true : false;
type IsBidi<M> = M extends { requestStream: true; responseStream: true } ? true : false;

/** Server handlers as async functions: unary ones return the response, bidi ones resolve when done. */
export type AsyncHandlers<D extends ServiceDefinition> = {
  [K in keyof D]: IsUnary<D[K]> extends true
    ? (request: RequestOf<D[K]>, call: grpc.ServerUnaryCall<RequestOf<D[K]>, ResponseOf<D[K]>>) => Promise<ResponseOf<D[K]>>
    : IsBidi<D[K]> extends true
      ? (call: grpc.ServerDuplexStream<RequestOf<D[K]>, ResponseOf<D[K]>>) => Promise<void>
      : never;
};

export type UnaryMethods<D extends ServiceDefinition> = {
  [K in keyof D as IsUnary<D[K]> extends true ? K : never]: (request: RequestOf<D[K]>, options?: CallOptions) => Promise<ResponseOf<D[K]>>;
};

export type BidiMethodNames<D extends ServiceDefinition> = {
  [K in keyof D]: IsBidi<D[K]> extends true ? K : never;
}[keyof D];

export interface CallOptions {
  /** Overrides the client's default deadline for this call. */
  deadlineMs?: number;
  /** Overrides how many times an UNAVAILABLE call is retried. */
  retries?: number;
  metadata?: grpc.Metadata;
}
