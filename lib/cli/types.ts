/**
 * A subcommand of the `lvdm` program. Options are parsed with node's util.parseArgs
 * (strict: unknown flags are errors); `--help` on every subcommand prints `usage`.
 */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** One line shown in --help. */
  help: string;
}

export type ParsedValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  name: string;
  /** One line for `lvdm --help`. */
  summary: string;
  /** Extra text for `lvdm <name> --help` (examples etc.). */
  description?: string;
  options: Record<string, OptionSpec>;
  /** Whether positional arguments are accepted. */
  positionals?: boolean;
  /** Returns the process exit code. */
  run(values: ParsedValues, positionals: string[]): Promise<number>;
}
