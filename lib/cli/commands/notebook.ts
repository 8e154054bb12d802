/** `lvdm notebook`: the Jupyter notebook server on 127.0.0.1 with the project's tslab kernel (`npm run notebook`). */
import { Command } from '../types';
import { int } from '../args';
import { startNotebookServer } from '../../notebook/jupyter';

export const command: Command = {
  name: 'notebook',
  summary: 'start Jupyter (classic notebook) on 127.0.0.1 with the TypeScript (tslab) kernel and print its URL',
  description: `Open the printed URL, then notebooks/ (kernel "TypeScript (tslab, LVDM.ts)"). Ctrl-C stops the server.
Examples:
  npm run notebook
  npm run notebook -- --port 8890`,
  options: {
    port: { type: 'string', short: 'p', help: 'port on 127.0.0.1', default: '8888' },
  },
  async run(values) {
    const port = int(values, 'port', 8888)!;
    const server = await startNotebookServer({ port, log: (l) => process.stderr.write(`[jupyter] ${l}\n`) });
    console.log(`Jupyter is running (pid ${server.pid}); open:\n  ${server.url}\n  notebooks: ${server.url.replace('/?', '/tree/notebooks?')}`);
    const stop = (): void => {
      void server.stop().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await new Promise<void>((resolve) => server.process.once('exit', () => resolve()));
    return server.process.exitCode ?? 0;
  },
};
