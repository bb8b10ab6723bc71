// The tasks Gatelab trains, by the model file's `task:` key. A new task is a file in this folder
// implementing Task (./task.ts) and one line here; the loop, the CLI and the extension need no change.

import type { ModelConfig, TaskKind } from '../config/types';
import { checkSupported } from '../train/lmsetup';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import type { Task } from './task';
import { languageModel } from './languageModel';
import { classification } from './classification';
import { forecast } from './forecast';
import { copy } from './copy';
import { adding } from './adding';
import { keyQuery } from './keyQuery';
import { changePoint } from './changePoint';

export const TASKS: Record<TaskKind, Task> = {
  'language-model': languageModel,
  classification,
  forecast,
  copy,
  adding,
  'key-query': keyQuery,
  'change-point': changePoint,
};

export function taskOf(cfg: Pick<ModelConfig, 'task'>): Task {
  const t = TASKS[cfg.task];
  if (!t) throw new Error(`no task plug-in for "${cfg.task}"`);
  return t;
}

/** Rejects what the engine cannot train, at its key: the layer checks every task shares, then the task's own. */
export function checkModel(cfg: ModelConfig): Task {
  checkSupported(cfg);
  const t = taskOf(cfg);
  if (!t.generated && cfg.positions?.['train.evaluateEvery'])
    throw new UserError(
      `train.evaluateEvery applies to tasks whose data is generated every step (${generatedTasks()}); a ${cfg.task} model is evaluated after every epoch`,
      whereOf(cfg, 'train.evaluateEvery'),
      'remove train.evaluateEvery',
    );
  t.check?.(cfg);
  return t;
}

function generatedTasks(): string {
  return Object.values(TASKS).filter((t) => t.generated).map((t) => t.kind).join(', ');
}
