/**
 * Waits for every promise, then resolves with their values, or rejects with the first rejection in
 * the order given. Unlike Promise.all it never leaves work running behind a failure (the gateway's
 * concurrent images, the local mesh's starting processes), and the error reported does not depend
 * on which failure came first in time.
 */
export async function allInOrder<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}
