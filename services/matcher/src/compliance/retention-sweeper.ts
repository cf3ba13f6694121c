/**
 * The retention sweeper: erases, through the one erasure path, every subject whose latest consent
 * record's retention has ended. Every replica runs it; erasure is idempotent, so two replicas
 * reaching the same subject erase it once.
 */
import { ErasureReason } from '@faceprint/contracts/common';
import type { Logger } from '@faceprint/telemetry';
import type { GalleryStore } from '../gallery/gallery-store.js';
import { PeriodicTask } from '../periodic-task.js';
import type { SubjectEraser } from './erasure.js';

/** Subjects erased per sweep query (the sweep repeats until none are left). */
const BATCH = 100;
/** The actor the audit trail names for erasures the sweeper makes. */
export const RETENTION_SWEEPER_ACTOR = 'faceprint-matcher/retention-sweeper';

/** Runs {@link RetentionSweeper.sweep} every `intervalMs` until stopped. */
export class RetentionSweeper {
  readonly #store: GalleryStore;
  readonly #eraser: SubjectEraser;
  readonly #task: PeriodicTask;

  constructor(store: GalleryStore, eraser: SubjectEraser, intervalMs: number, log: Logger) {
    this.#store = store;
    this.#eraser = eraser;
    this.#task = new PeriodicTask(
      intervalMs,
      async () => {
        const erased = await this.sweep();
        if (erased > 0) log.info({ erased }, 'retention sweeper erased subjects whose retention ended');
      },
      log,
      'retention sweep failed; retrying at the next interval',
    );
  }

  start(): void {
    this.#task.start();
  }

  stop(): Promise<void> {
    return this.#task.stop();
  }

  /** Erases every subject whose retention has ended; returns how many this call erased. */
  async sweep(): Promise<number> {
    const erased = await this.#eraseExpired();
    // One scrub of the database's files for the whole sweep (each erasure's key is already destroyed).
    if (erased > 0) await this.#eraser.scrubStorage();
    return erased;
  }

  async #eraseExpired(): Promise<number> {
    let erased = 0;
    for (;;) {
      const expired = await this.#store.expiredSubjects(BATCH);
      let progressed = false;
      for (const subject of expired) {
        if (this.#task.stopped) return erased;
        const outcome = await this.#eraser.erase({
          tenantId: subject.tenantId,
          subjectId: subject.subjectId,
          requestRef: `retention-expired:${subject.retainUntil.toISOString()}`,
          reason: ErasureReason.RETENTION_EXPIRED,
          note: '',
          actor: RETENTION_SWEEPER_ACTOR,
          requestId: '',
        }, { deferScrub: true });
        if (outcome && !outcome.replayed) {
          erased++;
          progressed = true;
        }
      }
      // Stop when the batch was the last, or when another replica erased it all first.
      if (expired.length < BATCH || !progressed) return erased;
    }
  }
}
