// Argument parsing shared by the CLI's commands: node's parseArgs, strict, with its errors as
// UserErrors that name the argument and point to the command's help.

import { parseArgs, ParseArgsConfig } from 'node:util';
import { UserError } from '../engine/errors';

type Opts = ParseArgsConfig['options'];

export function parse(args: string[], options: NonNullable<Opts>, command: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    const m = /'(--?[\w-]+)/.exec(msg);
    throw new UserError(msg, { key: m?.[1] ?? command }, `see \`gatelab ${command} --help\``);
  }
}

