/**
 * Runs `jobs` at most `width` at a time, each lane taking the next job as soon as its last one ends (a
 * slow job holds one lane, not a whole batch). After a job fails no new job starts; the ones running are
 * awaited, then the first failure is thrown, so nothing is left running behind the caller's back.
 */
export async function atMost(width: number, jobs: ReadonlyArray<() => Promise<unknown>>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      try {
        await job();
      } catch (e) {
        errors.push(e);
        next = jobs.length;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, jobs.length)) }, lane));
  if (errors.length) throw errors[0];
}
