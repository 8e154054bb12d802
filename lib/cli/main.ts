/** The `lvdm` command-line program: `lvdm <command> [options]`, `--help` everywhere. */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { Command, OptionSpec, ParsedValues } from './types';
import { COMMANDS } from './registry';

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' };

export function commandUsage(cmd: Command): string {
  const lines = [`Usage: lvdm ${cmd.name} [options]${cmd.positionals ? ' [args]' : ''}`, '', cmd.summary];
  if (cmd.description) lines.push('', cmd.description.trim());
  lines.push('', 'Options:');
  const opts = { ...cmd.options, help: HELP };
  const width = Math.max(...Object.entries(opts).map(([k, o]) => flagText(k, o).length));
  for (const [k, o] of Object.entries(opts)) {
    const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : '';
    lines.push(`  ${flagText(k, o).padEnd(width)}  ${o.help}${def}`);
  }
  return lines.join('\n');
}

function flagText(name: string, o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ' <value>' : ''}`;
}

export function programUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'LVDM.ts - latent video diffusion models in TypeScript',
    '',
    'Usage: lvdm <command> [options]      (lvdm <command> --help for its options)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

/** Runs the program; returns the exit code. Errors print as one clear message (stack with LVDM_DEBUG=1). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(programUsage());
    return name ? 0 : 1;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`lvdm: unknown command '${name}'\n\n${programUsage()}`);
    return 2;
  }
  let values: ParsedValues;
  let positionals: string[];
  try {
    const options = Object.fromEntries(
      // parseArgs rejects keys present with value undefined: copy only the defined ones.
      Object.entries({ ...cmd.options, help: HELP }).map(([k, o]) => [
        k,
        Object.fromEntries(Object.entries({ type: o.type, short: o.short, multiple: o.multiple, default: o.default }).filter(([, v]) => v !== undefined)),
      ]),
    );
    const parsed = parseArgs({ args: rest, options: options as unknown as ParseArgsConfig['options'], allowPositionals: true, strict: true });
    values = parsed.values as ParsedValues;
    positionals = parsed.positionals;
  } catch (e) {
    console.error(`lvdm ${cmd.name}: ${(e as Error).message}\n\n${commandUsage(cmd)}`);
    return 2;
  }
  if (values.help) {
    console.log(commandUsage(cmd));
    return 0;
  }
  if (positionals.length && !cmd.positionals) {
    console.error(`lvdm ${cmd.name}: unexpected argument '${positionals[0]}'\n\n${commandUsage(cmd)}`);
    return 2;
  }
  try {
    return await cmd.run(values, positionals);
  } catch (e) {
    const err = e as Error;
    console.error(process.env.LVDM_DEBUG ? err.stack : `lvdm ${cmd.name}: ${err.message}`);
    return 1;
  }
}

