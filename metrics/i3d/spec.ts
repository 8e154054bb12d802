/**
 * InceptionI3d (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?"), RGB stream, as in
 * deepmind/kinetics-i3d `i3d.py` and its PyTorch ports: the layer table of fvd-kvd.md section 6.
 *
 * Unit names follow the PyTorch state-dict layout (`Mixed_3b.b1b`, `logits`); `tfName` is the
 * TF-Hub variable scope (`Mixed_3b/Branch_1/Conv3d_0b_3x3`, with the Mixed_5b typo).
 */

export type Triple = [number, number, number];

export interface UnitSpec {
  /** PyTorch-style name: 'Conv3d_1a_7x7', 'Mixed_4b.b2a', 'logits'. */
  name: string;
  /** TF-Hub scope below 'RGB/inception_i3d/'. */
  tfName: string;
  cin: number;
  cout: number;
  kernel: Triple;
  stride: Triple;
  /** Conv -> BN (no scale) -> ReLU; false only for the logits conv (bias, no BN/ReLU). */
  bn: boolean;
}

/** Inception module widths: [b0, b1a, b1b, b2a, b2b, b3b] (output = b0 + b1b + b2b + b3b). */
export const MIXED_WIDTHS: Record<string, [number, number, number, number, number, number]> = {
  Mixed_3b: [64, 96, 128, 16, 32, 32],
  Mixed_3c: [128, 128, 192, 32, 96, 64],
  Mixed_4b: [192, 96, 208, 16, 48, 64],
  Mixed_4c: [160, 112, 224, 24, 64, 64],
  Mixed_4d: [128, 128, 256, 24, 64, 64],
  Mixed_4e: [112, 144, 288, 32, 64, 64],
  Mixed_4f: [256, 160, 320, 32, 128, 128],
  Mixed_5b: [256, 160, 320, 32, 128, 128],
  Mixed_5c: [384, 192, 384, 48, 128, 128],
};

export type EndpointKind = 'conv' | 'maxpool' | 'mixed' | 'logits';

export interface Endpoint {
  name: string;
  kind: EndpointKind;
  /** Pools: window and stride (TF SAME padding); convs: see the unit. */
  kernel?: Triple;
  stride?: Triple;
}

/** Endpoints in forward order (kinetics-i3d VALID_ENDPOINTS up to Logits). */
export const ENDPOINTS: readonly Endpoint[] = [
  { name: 'Conv3d_1a_7x7', kind: 'conv' },
  { name: 'MaxPool3d_2a_3x3', kind: 'maxpool', kernel: [1, 3, 3], stride: [1, 2, 2] },
  { name: 'Conv3d_2b_1x1', kind: 'conv' },
  { name: 'Conv3d_2c_3x3', kind: 'conv' },
  { name: 'MaxPool3d_3a_3x3', kind: 'maxpool', kernel: [1, 3, 3], stride: [1, 2, 2] },
  { name: 'Mixed_3b', kind: 'mixed' },
  { name: 'Mixed_3c', kind: 'mixed' },
  { name: 'MaxPool3d_4a_3x3', kind: 'maxpool', kernel: [3, 3, 3], stride: [2, 2, 2] },
  { name: 'Mixed_4b', kind: 'mixed' },
  { name: 'Mixed_4c', kind: 'mixed' },
  { name: 'Mixed_4d', kind: 'mixed' },
  { name: 'Mixed_4e', kind: 'mixed' },
  { name: 'Mixed_4f', kind: 'mixed' },
  { name: 'MaxPool3d_5a_2x2', kind: 'maxpool', kernel: [2, 2, 2], stride: [2, 2, 2] },
  { name: 'Mixed_5b', kind: 'mixed' },
  { name: 'Mixed_5c', kind: 'mixed' },
  { name: 'Logits', kind: 'logits', kernel: [2, 7, 7], stride: [1, 1, 1] },
];

const ONE: Triple = [1, 1, 1];
const THREE: Triple = [3, 3, 3];

function mixedUnits(name: string, cin: number): UnitSpec[] {
  const [b0, b1a, b1b, b2a, b2b, b3b] = MIXED_WIDTHS[name];
  // deepmind/kinetics-i3d names Mixed_5b's second 3x3 'Conv3d_0a_3x3' (a typo kept in the checkpoint).
  const b2bTf = name === 'Mixed_5b' ? 'Branch_2/Conv3d_0a_3x3' : 'Branch_2/Conv3d_0b_3x3';
  const u = (suffix: string, tf: string, ci: number, co: number, k: Triple): UnitSpec => ({
    name: `${name}.${suffix}`,
    tfName: `${name}/${tf}`,
    cin: ci,
    cout: co,
    kernel: k,
    stride: ONE,
    bn: true,
  });
  return [
    u('b0', 'Branch_0/Conv3d_0a_1x1', cin, b0, ONE),
    u('b1a', 'Branch_1/Conv3d_0a_1x1', cin, b1a, ONE),
    u('b1b', 'Branch_1/Conv3d_0b_3x3', b1a, b1b, THREE),
    u('b2a', 'Branch_2/Conv3d_0a_1x1', cin, b2a, ONE),
    u('b2b', b2bTf, b2a, b2b, THREE),
    u('b3b', 'Branch_3/Conv3d_0b_1x1', cin, b3b, ONE),
  ];
}

/** Output channels of an inception module. */
export function mixedOut(name: string): number {
  const w = MIXED_WIDTHS[name];
  return w[0] + w[2] + w[4] + w[5];
}

/** Every convolution unit, in forward order. */
export function i3dUnits(numClasses = 400): UnitSpec[] {
  const conv = (name: string, cin: number, cout: number, k: Triple, s: Triple): UnitSpec => ({ name, tfName: name, cin, cout, kernel: k, stride: s, bn: true });
  const units: UnitSpec[] = [conv('Conv3d_1a_7x7', 3, 64, [7, 7, 7], [2, 2, 2]), conv('Conv3d_2b_1x1', 64, 64, ONE, ONE), conv('Conv3d_2c_3x3', 64, 192, THREE, ONE)];
  let c = 192;
  for (const m of Object.keys(MIXED_WIDTHS)) {
    units.push(...mixedUnits(m, c));
    c = mixedOut(m);
  }
  units.push({ name: 'logits', tfName: 'Logits/Conv3d_0c_1x1', cin: c, cout: numClasses, kernel: ONE, stride: ONE, bn: false });
  return units;
}

/** TF "SAME" padding along one axis: total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0); front gets floor(total / 2). */
export function samePad(n: number, k: number, s: number): [number, number] {
  const total = n % s === 0 ? Math.max(k - s, 0) : Math.max(k - (n % s), 0);
  const front = Math.floor(total / 2);
  return [front, total - front];
}

/** Output size of a padded VALID window: floor((n + pads - k) / s) + 1 (= ceil(n / s) for SAME). */
export function windowOut(n: number, k: number, s: number, pads: [number, number]): number {
  return Math.floor((n + pads[0] + pads[1] - k) / s) + 1;
}

export interface EndpointShape {
  name: string;
  /** [T, H, W, C] after the endpoint; Logits: [T', 1, 1, classes] before the time average. */
  shape: [number, number, number, number];
}

/** Per-endpoint output shapes for a T x H x W input, derived from the layer table. */
export function i3dEndpointShapes(t: number, h: number, w: number, numClasses = 400): EndpointShape[] {
  const units = new Map(i3dUnits(numClasses).map((u) => [u.name, u]));
  let s: [number, number, number, number] = [t, h, w, 3];
  const out: EndpointShape[] = [];
  const win = (k: Triple, st: Triple, c: number, same: boolean): [number, number, number, number] => {
    const dims = [s[0], s[1], s[2]].map((n, i) => windowOut(n, k[i], st[i], same ? samePad(n, k[i], st[i]) : [0, 0]));
    if (dims.some((v) => v < 1)) throw new Error(`I3D: input ${t}x${h}x${w} is too small (a ${k.join('x')} window does not fit ${s.slice(0, 3).join('x')})`);
    return [dims[0], dims[1], dims[2], c];
  };
  for (const e of ENDPOINTS) {
    if (e.kind === 'conv') {
      const u = units.get(e.name)!;
      s = win(u.kernel, u.stride, u.cout, true);
    } else if (e.kind === 'maxpool') {
      s = win(e.kernel!, e.stride!, s[3], true);
    } else if (e.kind === 'mixed') {
      s = [s[0], s[1], s[2], mixedOut(e.name)];
    } else {
      const p = win(e.kernel!, e.stride!, s[3], false);
      s = [p[0], 1, 1, numClasses];
      if (p[1] !== 1 || p[2] !== 1) s = [p[0], p[1], p[2], numClasses];
    }
    out.push({ name: e.name, shape: s });
  }
  return out;
}
