/**
 * Headless notebook execution (`npm run notebooks`): every notebook in notebooks/ runs in the smoke
 * profile with the tslab kernel; a failing cell stops the run with that cell's real error text;
 * executed copies are signed (trusted by the server) and their HTML export shows the plot and the
 * video when opened in headless Chromium.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from './helpers';
import { JUPYTER_PYTHON, jupyterEnv, listNotebooks, runNotebooks } from '../lib/notebook/jupyter';
import { checkPageInBrowser } from '../lib/plots/chromium';

interface Cell {
  cell_type: 'code' | 'markdown';
  source: string;
  metadata: Record<string, unknown>;
  outputs?: { output_type: string; name?: string; text?: string | string[]; data?: Record<string, unknown> }[];
  execution_count?: number | null;
}

function writeNotebook(file: string, cells: { code?: string; md?: string }[]): void {
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
    cells: cells.map((c, i) =>
      c.md !== undefined ? { id: `c${i}`, cell_type: 'markdown', metadata: {}, source: c.md } : { id: `c${i}`, cell_type: 'code', metadata: {}, source: c.code, outputs: [], execution_count: null },
    ),
  };
  fs.writeFileSync(file, JSON.stringify(nb, null, 1));
}

const readCells = (file: string): Cell[] => (JSON.parse(fs.readFileSync(file, 'utf8')) as { cells: Cell[] }).cells;

/** Whether Jupyter's notary (the project's data folder) trusts the notebook. */
function trusted(file: string): boolean {
  const code = 'import sys, nbformat\nfrom nbformat.sign import NotebookNotary\nnb = nbformat.read(sys.argv[1], 4)\nprint(NotebookNotary().check_signature(nb))';
  return execFileSync(JUPYTER_PYTHON, ['-c', code, file], { env: jupyterEnv(), encoding: 'utf8' }).trim() === 'True';
}

test('a notebook with a deliberate error fails with that error\'s text and stops there', { timeout: 240_000 }, async () => {
  const dir = tempDir('lvdm-nb-error-');
  try {
    const file = path.join(dir, 'broken.ipynb');
    writeNotebook(file, [
      { md: '# broken' },
      { code: "import { fmtTime } from './lib/train/progress';\nconsole.log(fmtTime(61));" },
      { code: "throw new Error('deliberate notebook failure 4b7e');" },
      { code: "console.log('not reached');" },
    ]);
    const r = await runNotebooks({ notebooks: [file], outDir: path.join(dir, 'out'), timeout: 120 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /broken\.ipynb FAILED at cell 2 \(In \[2\]\)/);
    assert.match(r.stderr, /Error: deliberate notebook failure 4b7e/);
    assert.match(r.stderr, /----- cell source -----\nthrow new Error/);
    const cells = readCells(path.join(dir, 'out', 'broken.ipynb'));
    assert.equal(cells[1].outputs?.map((o) => [o.text].flat().join('')).join(''), '1m01s\n');
    assert.equal(cells[3].execution_count, null, 'the cell after the failure ran');
    const summary = fs.readFileSync(path.join(dir, 'out', 'summary.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; error: string });
    assert.equal(summary.length, 1);
    assert.equal(summary[0].ok, false);
    assert.match(summary[0].error, /deliberate notebook failure 4b7e/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a cell that kills the kernel is named, with the kernel\'s death and what the cell printed', { timeout: 240_000 }, async () => {
  const dir = tempDir('lvdm-nb-dead-');
  try {
    const file = path.join(dir, 'dies.ipynb');
    writeNotebook(file, [{ code: "console.log('fine');" }, { code: "process.stderr.write('exiting on purpose 9c1d\\n');\n// Time for the kernel to send the text before it dies (an exit at once can drop it: a flake).\nawait new Promise((r) => setTimeout(r, 1000));\nprocess.exit(3);" }, { code: "console.log('not reached');" }]);
    const r = await runNotebooks({ notebooks: [file], outDir: path.join(dir, 'out'), timeout: 120 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /dies\.ipynb FAILED at cell 1 \(In \[ \]\)/);
    assert.match(r.stderr, /DeadKernelError: Kernel died\nexiting on purpose 9c1d/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every notebook runs in the smoke profile; the HTML export shows plots and videos in Chromium', { timeout: 1_800_000 }, async () => {
  const notebooks = listNotebooks(path.join(ROOT, 'notebooks'));
  assert.ok(notebooks.length >= 6, `notebooks: ${notebooks.join(', ')}`);
  for (const nb of notebooks) {
    // Committed without outputs.
    for (const c of readCells(nb)) if (c.cell_type === 'code') assert.deepEqual([c.outputs, c.execution_count], [[], null], `${nb} has outputs`);
  }
  const out = tempDir('lvdm-nb-smoke-');
  try {
    // Fresh output folders (the notebooks' runs and the executed copies), so every stage really runs.
    const r = await runNotebooks({ notebooks, outDir: path.join(out, 'executed'), html: true, timeout: 900, env: { LVDM_PROFILE: 'smoke', LVDM_NOTEBOOK_RUNS: path.join(out, 'runs') } });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    for (const nb of notebooks) {
      const name = path.basename(nb, '.ipynb');
      const executed = path.join(out, 'executed', `${name}.ipynb`);
      const cells = readCells(executed).filter((c) => c.cell_type === 'code');
      assert.ok(cells.every((c) => typeof c.execution_count === 'number'), `${name}: not every cell ran`);
      assert.ok(trusted(executed), `${name}: executed copy is not trusted`);
      assert.ok(fs.statSync(path.join(out, 'executed', `${name}.html`)).size > 0);
    }
    // The quick start's export: the plotly loss curves drew (offline, bundle inlined once) and the
    // sample videos are animated GIFs inside the page.
    const html = path.join(out, 'executed', '01-quickstart.html');
    const bundles = fs.readFileSync(html, 'utf8').split('plotly.js v2.35.2').length - 1;
    assert.equal(bundles, 1, 'the plotly bundle is inlined exactly once');
    const page = await checkPageInBrowser(html, { timeoutMs: 60_000 });
    assert.deepEqual(page.consoleErrors, []);
    assert.ok(page.plots.length >= 1 && page.plots.every((p) => p.traces > 0 && p.drawn === p.traces), `plots: ${JSON.stringify(page.plots)}`);
    assert.equal(page.plotContainers, page.plots.length, 'a plot container was not drawn');
    const gifs = page.images.filter((im) => im.src.startsWith('data:image/gif;base64,'));
    assert.ok(gifs.length >= 1 && gifs.every((im) => im.loaded && im.width > 0), `images: ${JSON.stringify(page.images.map((im) => ({ ...im, src: im.src.slice(0, 40) })))}`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
