import type { Metadata } from '@grpc/grpc-js';
import type { HeaderCarrier } from '../tracing.js';

/** gRPC metadata as a trace-context carrier (string values only; binary keys are skipped). */
export function metadataCarrier(metadata: Metadata): HeaderCarrier {
  return {
    get(key) {
      const value = metadata.get(key)[0];
      return typeof value === 'string' ? value : undefined;
    },
    set(key, value) {
      metadata.set(key, value);
    },
    keys() {
      return Object.keys(metadata.getMap());
    },
  };
}
