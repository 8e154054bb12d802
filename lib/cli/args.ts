/** Typed accessors for parsed option values (kept apart from main.ts so commands never import the registry). */
import { ParsedValues } from './types';

export function str(values: ParsedValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function requireStr(values: ParsedValues, key: string): string {
  const v = str(values, key);
  if (v === undefined || v === '') throw new Error(`--${key} is required`);
  return v;
}

export function num(values: ParsedValues, key: string, fallback?: number): number | undefined {
  const v = str(values, key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key}: expected a number, got '${v}'`);
  return n;
}

export function int(values: ParsedValues, key: string, fallback?: number): number | undefined {
  const n = num(values, key, fallback);
  if (n !== undefined && !Number.isInteger(n)) throw new Error(`--${key}: expected an integer, got '${String(values[key])}'`);
  return n;
}

export function flag(values: ParsedValues, key: string): boolean {
  return values[key] === true;
}

export function list(values: ParsedValues, key: string): string[] {
  const v = values[key];
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}
