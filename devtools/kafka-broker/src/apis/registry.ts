import { apiVersionsApi } from './api-versions.js';
import { createTopicsApi } from './create-topics.js';
import { deleteRecordsApi } from './delete-records.js';
import { deleteTopicsApi } from './delete-topics.js';
import { describeGroupsApi } from './describe-groups.js';
import { fetchApi } from './fetch.js';
import { findCoordinatorApi } from './find-coordinator.js';
import { heartbeatApi } from './heartbeat.js';
import { initProducerIdApi } from './init-producer-id.js';
import { joinGroupApi } from './join-group.js';
import { leaveGroupApi } from './leave-group.js';
import { listGroupsApi } from './list-groups.js';
import { listOffsetsApi } from './list-offsets.js';
import { metadataApi } from './metadata.js';
import { offsetCommitApi } from './offset-commit.js';
import { offsetFetchApi } from './offset-fetch.js';
import { produceApi } from './produce.js';
import { syncGroupApi } from './sync-group.js';
import { addOffsetsToTxnApi, addPartitionsToTxnApi, endTxnApi, txnOffsetCommitApi } from './transactions.js';
import type { ApiHandler } from './types.js';

/** Every API the broker implements; ApiVersions advertises exactly these keys and ranges. */
export const APIS: readonly ApiHandler[] = [
  produceApi,
  fetchApi,
  listOffsetsApi,
  metadataApi,
  offsetCommitApi,
  offsetFetchApi,
  findCoordinatorApi,
  joinGroupApi,
  heartbeatApi,
  leaveGroupApi,
  syncGroupApi,
  describeGroupsApi,
  listGroupsApi,
  apiVersionsApi(() => APIS),
  createTopicsApi,
  deleteTopicsApi,
  deleteRecordsApi,
  initProducerIdApi,
  addPartitionsToTxnApi,
  addOffsetsToTxnApi,
  endTxnApi,
  txnOffsetCommitApi,
];

export const API_BY_KEY: ReadonlyMap<number, ApiHandler> = new Map(APIS.map((a) => [a.apiKey, a]));
export const API_VERSIONS_KEY = 18;
