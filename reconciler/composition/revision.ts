/** The git revision the specs were read at, so a plan says exactly which specs it was made from. */
import { simpleGit } from 'simple-git';

export async function specsRevision(cwd: string, specsDir: string): Promise<{ revision: string | null; dirty: boolean }> {
  try {
    const git = simpleGit({ baseDir: cwd });
    if (!(await git.checkIsRepo())) return { revision: null, dirty: false };
    const revision = (await git.revparse(['HEAD'])).trim();
    const status = await git.status(['--', specsDir]);
    return { revision: revision || null, dirty: !status.isClean() };
  } catch {
    // A repository without commits, or no git at all: the plan still works, it just cannot name a revision.
    return { revision: null, dirty: false };
  }
}
