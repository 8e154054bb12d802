/** Every `lvdm` subcommand, in the order `lvdm --help` lists them. */
import { Command } from './types';
import { command as doctor } from './commands/doctor';
import { command as trainAe } from './commands/train-ae';
import { command as reconstruct } from './commands/reconstruct';
import { command as demo } from './commands/demo';
import { command as data } from './commands/data';
import { command as trainLvdm } from './commands/train-lvdm';
import { command as sample } from './commands/sample';
import { command as metrics } from './commands/metrics';
import { command as consistency } from './commands/consistency';
import { command as trainPred } from './commands/train-pred';
import { command as trainInterp } from './commands/train-interp';
import { command as sampleLong } from './commands/sample-long';
import { command as run } from './commands/run';
import { command as report } from './commands/report';
import { command as ship } from './commands/ship';
import { command as notebook } from './commands/notebook';
import { command as notebooks } from './commands/notebooks';
import { command as worker } from './commands/worker';
import { command as queue } from './commands/queue';
import { command as importCkpt } from './commands/import';
import { command as exportCkpt } from './commands/export';

export const COMMANDS: Command[] = [demo, doctor, data, trainAe, reconstruct, trainLvdm, sample, trainPred, trainInterp, sampleLong, metrics, consistency, importCkpt, exportCkpt, notebook, notebooks, worker, queue, run, report, ship];
