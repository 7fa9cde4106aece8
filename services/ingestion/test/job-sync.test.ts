import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import { type CatalogJob, type LocalJob, type SyncAction, syncAction } from '../src/job-sync.js';

const {
  JOB_STATE_CREATED,
  JOB_STATE_RUNNING,
  JOB_STATE_PAUSED,
  JOB_STATE_STOPPING,
  JOB_STATE_STOPPED,
  JOB_STATE_FAILED,
  JOB_STATE_FINISHED,
} = JobState;

describe('syncAction: what an ingestion process does to its members to match the catalog', () => {
  const cases: [CatalogJob, LocalJob, SyncAction, string][] = [
    [JOB_STATE_RUNNING, 'absent', 'start', 'started through another replica, or this process just came up'],
    [JOB_STATE_RUNNING, 'running', 'none', 'already in line'],
    [JOB_STATE_RUNNING, 'paused', 'resume', 'resumed through another replica'],
    [JOB_STATE_RUNNING, 'ending', 'none', 'a bounded job handed over to the group leader must not rejoin'],
    [JOB_STATE_PAUSED, 'absent', 'start paused', 'a paused job still holds its group membership'],
    [JOB_STATE_PAUSED, 'running', 'pause', 'paused through another replica'],
    [JOB_STATE_PAUSED, 'paused', 'none', 'already in line'],
    [JOB_STATE_STOPPING, 'running', 'stop', 'stopped through another replica: final flush here too'],
    [JOB_STATE_STOPPING, 'paused', 'stop', 'a paused job stops too'],
    [JOB_STATE_STOPPING, 'absent', 'none', 'nothing runs here'],
    [JOB_STATE_STOPPED, 'running', 'stop', 'a missed announcement: the periodic sync stops it'],
    [JOB_STATE_FAILED, 'running', 'stop', 'a member elsewhere failed the job'],
    [JOB_STATE_FAILED, 'absent', 'none', 'a failed job is not restarted by a sync'],
    ['deleted', 'running', 'stop', 'the job was deleted'],
    [JOB_STATE_FINISHED, 'running', 'none', 'members of a finished bounded job end by themselves'],
    [JOB_STATE_FINISHED, 'absent', 'none', 'a bounded job runs once'],
    [JOB_STATE_CREATED, 'absent', 'none', 'never started'],
    [JOB_STATE_STOPPING, 'ending', 'none', 'already stopping here'],
  ];
  for (const [catalog, local, expected, why] of cases) {
    it(`${typeof catalog === 'string' ? catalog : JobState[catalog]} + ${local} → ${expected} (${why})`, () => {
      assert.equal(syncAction(catalog, local), expected);
    });
  }
});
