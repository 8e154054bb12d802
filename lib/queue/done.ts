/** The queue's view of a finished task: the runner's DONE marker with the task's key (same rule as `taskState`). */
import { readDone, taskDir } from '../experiments/plan';
import type { Plan, TaskSpec } from '../experiments/types';

export function outputDone(plan: Plan, task: TaskSpec): boolean {
  return readDone(taskDir(plan, task))?.key === task.key;
}
