/**
 * Where `sluice up` records the address of the dev broker it started (`address` in the
 * broker's data directory, SLUICE_DEV_BROKER_DATA_DIR), so the CLI's own Kafka clients
 * (`sluice infer`, `sluice job create` sampling a topic) reach the same broker the services
 * use when KAFKA_BROKERS is unset. `sluice up` removes the file when it stops.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_DIR } from './launch.js';

const addressFile = (dataDir: string) => join(resolve(REPO_DIR, dataDir), 'address');

export function recordDevBroker(dataDir: string, address: string): void {
  writeFileSync(addressFile(dataDir), `${address}\n`);
}

export function forgetDevBroker(dataDir: string): void {
  rmSync(addressFile(dataDir), { force: true });
}

/** The address `sluice up` recorded, or undefined when no `sluice up` runs a dev broker here. */
export function recordedDevBroker(dataDir: string): string | undefined {
  try {
    return readFileSync(addressFile(dataDir), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
