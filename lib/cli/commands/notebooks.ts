/** `lvdm notebooks`: executes the notebooks headlessly with the tslab kernel (`npm run notebooks`). */
import * as path from 'node:path';
import { Command } from '../types';
import { flag, int, list, str } from '../args';
import { listNotebooks, PROJECT_ROOT, runNotebooks } from '../../notebook/jupyter';
import { profileName } from '../../notebook/profile';

export const command: Command = {
  name: 'notebooks',
  summary: 'execute every notebook with the tslab kernel; stop at the first cell error and print its text',
  description: `The notebooks are sized by LVDM_PROFILE=smoke|mini|paper (default mini). Executed copies
(signed, so the notebook server shows their plots) go to --out/<profile>/NAME.ipynb, with --html also NAME.html.
Examples:
  npm run notebooks                                   # every notebook in notebooks/
  LVDM_PROFILE=smoke npm run notebooks -- --html      # the CI sizes, plus HTML copies
  npm run notebooks -- --only 02 --only metrics          # by number or topic`,
  options: {
    html: { type: 'boolean', help: 'also write each executed notebook as HTML (nbconvert)' },
    only: { type: 'string', multiple: true, help: 'run only this notebook: its name, number (02) or topic (metrics, ablation); repeatable' },
    dir: { type: 'string', help: 'notebook folder', default: 'notebooks' },
    out: { type: 'string', short: 'o', help: 'output folder for executed copies', default: 'runs/notebooks' },
    timeout: { type: 'string', help: 'seconds per cell', default: '3600' },
  },
  async run(values) {
    const profile = profileName();
    const dir = path.resolve(PROJECT_ROOT, str(values, 'dir') ?? 'notebooks');
    const notebooks = listNotebooks(dir, list(values, 'only'));
    const outDir = path.resolve(PROJECT_ROOT, str(values, 'out') ?? 'runs/notebooks', profile);
    console.log(`[notebooks] profile ${profile}: ${notebooks.length} notebook(s) -> ${path.relative(PROJECT_ROOT, outDir)}`);
    const r = await runNotebooks({ notebooks, outDir, html: flag(values, 'html'), timeout: int(values, 'timeout', 3600), env: { LVDM_PROFILE: profile }, stdio: 'inherit' });
    return r.code;
  },
};
