/** Reads and validates experiment YAML files; every error names the file, the key path and what was expected. */
import * as fs from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ExperimentConfig } from './schema';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function keyPath(path: (string | number)[]): string {
  return path.length ? path.map(String).join('.') : '<root>';
}

/** One readable line per zod issue. */
export function formatIssues(source: string, error: z.ZodError): string {
  const lines = error.issues.map((iss) => {
    const at = keyPath(iss.path);
    switch (iss.code) {
      case 'unrecognized_keys':
        return `${source}: unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `'${iss.path.length ? at + '.' : ''}${k}'`).join(', ')}`;
      case 'invalid_type':
        return iss.received === 'undefined'
          ? `${source}: missing key '${at}' (expected ${iss.expected})`
          : `${source}: key '${at}': expected ${iss.expected}, got ${iss.received}`;
      case 'invalid_enum_value':
        return `${source}: key '${at}': expected one of ${iss.options.map((o) => `'${String(o)}'`).join(', ')}, got '${String(iss.received)}'`;
      default:
        return `${source}: key '${at}': ${iss.message}`;
    }
  });
  return lines.join('\n');
}

/** Validates an already-parsed object against a schema (ExperimentConfig by default). */
export function validateConfig<S extends z.ZodTypeAny = typeof ExperimentConfig>(raw: unknown, source: string, schema?: S): z.infer<S> {
  const s = (schema ?? ExperimentConfig) as S;
  const r = s.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(source, r.error));
  return r.data as z.infer<S>;
}

/** Parses YAML text; syntax errors carry the line number. */
export function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${source}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  return doc.toJS();
}

/**
 * Applies `key.path=value` overrides (value parsed as YAML, so numbers/booleans/lists work), e.g.
 * `autoencoder.train.steps=10`. Used by the CLI's `--set` and by experiment sweeps.
 */
export function applyOverrides(raw: unknown, overrides: string[], source = '--set'): unknown {
  const root = (raw ?? {}) as Record<string, unknown>;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${source}: expected key.path=value, got '${o}'`);
    const keys = o.slice(0, eq).split('.');
    // Own properties only, and never '__proto__' (assigning it would rewrite a prototype).
    if (keys.some((k) => k === '' || k === '__proto__')) throw new ConfigError(`${source}: invalid key path '${o.slice(0, eq)}' in '${o}'`);
    const value = parseYaml(o.slice(eq + 1), `${source} ${o}`);
    let node: Record<string, unknown> = root;
    for (const k of keys.slice(0, -1)) {
      const next = Object.prototype.hasOwnProperty.call(node, k) ? node[k] : undefined;
      if (next === undefined || next === null) node[k] = {};
      else if (typeof next !== 'object' || Array.isArray(next)) throw new ConfigError(`${source}: '${keys.join('.')}': '${k}' is not a mapping`);
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return root;
}

/** Loads `file`, applies overrides, validates. */
export function loadConfig(file: string, overrides: string[] = []): ExperimentConfig {
  if (!fs.existsSync(file)) throw new ConfigError(`${file}: config file not found (expected a YAML file, e.g. experiments/demo.yaml)`);
  const raw = applyOverrides(parseYaml(fs.readFileSync(file, 'utf8'), file), overrides);
  return validateConfig(raw, file);
}
