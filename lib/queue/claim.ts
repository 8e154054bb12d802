/**
 * A claim on a task in the shared run folder (`<outDir>.lock`), held while a worker runs it. It
 * keeps two workers from writing the same task's `.partial` folder at once, which the queue alone
 * cannot promise when Redis loses its state mid-run (the queue is rebuilt while the old worker is
 * still busy). The holder refreshes the file's mtime every `staleMs / 4`; a claim not refreshed for
 * `staleMs` belongs to a dead worker and is taken over. Created with O_EXCL (atomic on local file
 * systems and NFSv3+); machines' clocks must agree to well within `staleMs` (NTP).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TaskClaim {
  release(): void;
}

export interface ClaimHolder {
  worker: string;
  pid: number;
  since: string;
}

/** Tries to claim `file`; returns the current holder instead when a live worker has it. */
export function claimTask(file: string, worker: string, staleMs: number): TaskClaim | { heldBy: ClaimHolder } {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = fs.openSync(file, 'wx');
      const me: ClaimHolder = { worker, pid: process.pid, since: new Date().toISOString() };
      fs.writeSync(fd, JSON.stringify(me));
      fs.closeSync(fd);
      const timer = setInterval(() => {
        const now = new Date();
        try {
          fs.utimesSync(file, now, now);
        } catch {
          // removed by a taker after we looked stale; the DONE marker rule still holds
        }
      }, Math.max(250, staleMs / 4));
      timer.unref();
      return {
        release: () => {
          clearInterval(timer);
          try {
            const holder = JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimHolder;
            if (holder.worker === worker && holder.pid === process.pid) fs.rmSync(file, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      continue; // released meanwhile: try again
    }
    if (Date.now() - st.mtimeMs < staleMs) {
      let holder: ClaimHolder = { worker: 'unknown', pid: 0, since: '' };
      try {
        holder = JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimHolder;
      } catch {
        // being written
      }
      return { heldBy: holder };
    }
    fs.rmSync(file, { force: true }); // a dead worker's claim
  }
  return { heldBy: { worker: 'unknown', pid: 0, since: '' } };
}
