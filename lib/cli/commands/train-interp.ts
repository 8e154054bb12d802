/** `lvdm train-interp --config experiments/long-*-interp.yaml`: the long-video interpolation model. */
import { Command } from '../types';
import { trainLongCommand } from '../../hierarchical/cli';

export const command: Command = trainLongCommand('train-interp', 'interpolation', 'lvdm train-interp --config experiments/long-sky-interp.yaml --ae runs/long-sky/autoencoder/autoencoder.safetensors');
