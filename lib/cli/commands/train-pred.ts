/** `lvdm train-pred --config experiments/long-*-pred.yaml`: the long-video prediction model. */
import { Command } from '../types';
import { trainLongCommand } from '../../hierarchical/cli';

export const command: Command = trainLongCommand('train-pred', 'prediction', 'lvdm train-pred --config experiments/long-sky-pred.yaml --ae runs/long-sky/autoencoder/autoencoder.safetensors');
