/**
 * The unused-key sweeper: destroys data keys that no subject refers to (an enrolment whose
 * transaction failed after its key was stored), so that nothing can unseal what such an aborted
 * enrolment left in the database's files. Every replica runs it; destruction is idempotent.
 */
import type { Logger } from '@faceprint/telemetry';
import type { GalleryStore } from '../gallery/gallery-store.js';
import { PeriodicTask } from '../periodic-task.js';

/** A key younger than this may belong to an enrolment still in flight, on any replica: it is left alone. */
export const UNUSED_KEY_MIN_AGE_MS = 60 * 60 * 1000;

/** A task that runs {@link GalleryStore.destroyUnusedKeys} every `intervalMs` (0: never), once started. */
export function unusedKeySweeper(store: GalleryStore, intervalMs: number, log: Logger): PeriodicTask {
  return new PeriodicTask(
    intervalMs,
    async () => {
      const destroyed = await store.destroyUnusedKeys(UNUSED_KEY_MIN_AGE_MS);
      if (destroyed > 0) log.info({ destroyed }, 'destroyed data keys no subject uses (left by enrolments that failed)');
    },
    log,
    'unused-key sweep failed; retrying at the next interval',
  );
}
