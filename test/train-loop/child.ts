// Child process for the SIGKILL test: runs the fake trainer in a run folder and is killed by it.
// Usage: node --import tsx test/train-loop/child.ts OUT_DIR TOTAL CKPT_EVERY LOG_EVERY KILL_AT
import { runTraining } from '../../lib/train/loop';
import { FakeTrainer } from './fake-trainer';

async function main(): Promise<void> {
  const [outDir, total, ckptEvery, logEvery, killAt] = process.argv.slice(2);
  const trainer = new FakeTrainer({ killAt: Number(killAt) });
  await runTraining(trainer, { outDir, totalSteps: Number(total), ckptEvery: Number(ckptEvery), logEvery: Number(logEvery), config: { test: 'kill' }, progress: false });
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
