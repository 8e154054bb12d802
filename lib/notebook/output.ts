/**
 * Where notebook displays go. Inside the tslab kernel: tslab's `display` (a new output) and
 * `newDisplay()` (one output replaced in place through update_display_data, for live progress).
 * Elsewhere (scripts, tests) the caller sets a sink with `setOutputSink`; without one, HTML outputs
 * are summarised on stdout so library calls stay usable outside notebooks.
 *
 * tslab is required lazily (inside a function), so importing this module never loads tslab or its
 * bundled TypeScript outside the kernel.
 */

/** One output that later calls replace (the same display_id). */
export interface LiveOutput {
  html(html: string): void;
}

export interface OutputSink {
  /** Appends an HTML output to the cell. */
  html(html: string): void;
  /** A new output that can be replaced in place. */
  live(): LiveOutput;
}

type TslabModule = typeof import('tslab');

/** True inside the tslab kernel process (`tslab kernel --config-path ...`). */
export function inTslabKernel(argv: readonly string[] = process.argv): boolean {
  return /tslab/.test(argv[1] ?? '') && argv.includes('kernel');
}

function tslabSink(): OutputSink {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tslab = require('tslab') as TslabModule;
  return {
    html: (html) => tslab.display.html(html),
    live: () => {
      const d = tslab.newDisplay();
      return { html: (html: string) => d.html(html) };
    },
  };
}

/** Outside a kernel without a sink: one stdout line per output (its size and text content). */
const consoleSink: OutputSink = {
  html: (html) => process.stdout.write(`[html output, ${html.length} chars] ${htmlText(html).slice(0, 120)}\n`),
  live: () => ({ html: () => undefined }),
};

let custom: OutputSink | null = null;
let kernel: OutputSink | null = null;

/** Routes outputs to `sink` (null: back to the default). Returns the previous custom sink. */
export function setOutputSink(sink: OutputSink | null): OutputSink | null {
  const prev = custom;
  custom = sink;
  return prev;
}

export function outputSink(): OutputSink {
  if (custom) return custom;
  if (inTslabKernel()) return (kernel ??= tslabSink());
  return consoleSink;
}

/** Shows an HTML output in the current cell. */
export function showHtml(html: string): void {
  outputSink().html(html);
}

/** The visible text of an HTML fragment (tags, scripts and styles dropped; whitespace collapsed). */
export function htmlText(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}
