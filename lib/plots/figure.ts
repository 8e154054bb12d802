/**
 * Typed plotly.js figure specs: the subset of plotly's JSON schema the toolkit draws with.
 * A figure is plain JSON `{ data, layout }`, passed as is to `Plotly.newPlot(div, data, layout)`.
 */

export interface Line {
  color?: string;
  width?: number;
  dash?: 'solid' | 'dash' | 'dot' | 'dashdot';
}

export interface ErrorBar {
  type: 'data';
  /** Upper (or symmetric) extent. */
  array: (number | null)[];
  /** Lower extent when asymmetric. */
  arrayminus?: (number | null)[];
  symmetric?: boolean;
  visible: boolean;
  color?: string;
  thickness?: number;
  width?: number;
}

export interface ScatterTrace {
  type: 'scatter';
  mode: 'lines' | 'markers' | 'lines+markers';
  name: string;
  x: (number | string)[];
  y: (number | null)[];
  line?: Line;
  marker?: { color?: string; size?: number; symbol?: string };
  error_y?: ErrorBar;
  fill?: 'none' | 'toself' | 'tonexty' | 'tozeroy';
  fillcolor?: string;
  showlegend?: boolean;
  legendgroup?: string;
  hoverinfo?: 'skip' | 'all' | 'x+y+name';
  hovertemplate?: string;
  connectgaps?: boolean;
  /** The y axis of a stacked panel: 'y2' for layout.yaxis2, ... */
  yaxis?: string;
}

export type Trace = ScatterTrace;

export interface Axis {
  title: { text: string };
  type?: 'linear' | 'log' | 'category';
  zeroline?: boolean;
  rangemode?: 'normal' | 'tozero';
  gridcolor?: string;
  automargin?: boolean;
  /** Tick spacing; on log axes 'D1' / 'D2' label the digits 1-9 / 2 and 5 between decades. */
  dtick?: number | string;
  tickvals?: number[];
  ticktext?: string[];
  /** Stacked panels: the axis' share of the plot height, and the x axis it is drawn against. */
  domain?: [number, number];
  anchor?: string;
}

export interface Layout {
  title: { text: string; x?: number; font?: { size?: number } };
  xaxis: Axis;
  yaxis: Axis;
  /** Further y axes of stacked panels (traces name them as 'y2', 'y3', ...). */
  [yaxisN: `yaxis${number}`]: Axis | undefined;
  width?: number;
  height?: number;
  autosize?: boolean;
  margin?: { l?: number; r?: number; t?: number; b?: number };
  legend?: { orientation?: 'h' | 'v'; x?: number; y?: number; xanchor?: 'left' | 'center' | 'right'; yanchor?: 'top' | 'middle' | 'bottom'; font?: { size?: number } };
  font?: { family?: string; size?: number };
  paper_bgcolor?: string;
  plot_bgcolor?: string;
  hovermode?: 'closest' | 'x' | 'x unified' | false;
  showlegend?: boolean;
}

export interface Figure {
  data: Trace[];
  layout: Layout;
}

/** Qualitative colours (the D3/matplotlib category10 set), cycled by curve index. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function color(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** Line dash by curve index: solid for the first round of colours, then dotted, then dashed. */
export function dash(i: number): 'solid' | 'dot' | 'dash' {
  const round = Math.floor(i / PALETTE.length) % 3;
  return round === 0 ? 'solid' : round === 1 ? 'dot' : 'dash';
}

/** Ticks at 1, 2 and 5 times powers of ten covering [lo, hi] (lo > 0), for log axes (finer where that leaves fewer than two inside). */
export function logTicks(lo: number, hi: number): { tickvals?: number[]; ticktext?: string[] } {
  const at = (mantissas: number[]): number[] => {
    const vals: number[] = [];
    for (let e = Math.floor(Math.log10(lo)) - 1; e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of mantissas) {
        const v = Number((m * 10 ** e).toPrecision(12));
        if (v >= lo / 1.2 && v <= hi * 1.2) vals.push(v);
      }
    return vals;
  };
  const inside = (vals: number[]): number => vals.filter((v) => v >= lo && v <= hi).length;
  // 1-2-5 ticks; a range narrower than that (a loss between 0.06 and 0.09) gets every mantissa,
  // and one narrower still plotly's own ticks rather than an unlabelled axis.
  let vals = at([1, 2, 5]);
  if (inside(vals) < 2) vals = at([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  if (inside(vals) < 2) return {};
  return { tickvals: vals, ticktext: vals.map((v) => String(v)) };
}

/** '#rrggbb' with an alpha, as 'rgba(r,g,b,a)' (for error bands). */
export function withAlpha(hex: string, alpha: number): string {
  const v = parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255},${(v >> 8) & 255},${v & 255},${alpha})`;
}

/** The common look: white background, light grid, legend on the right, DejaVu Sans. */
export function baseLayout(title: string, xTitle: string, yTitle: string): Layout {
  return {
    title: { text: title, x: 0.02, font: { size: 16 } },
    xaxis: { title: { text: xTitle }, gridcolor: '#e5e5e5', zeroline: false, automargin: true },
    yaxis: { title: { text: yTitle }, gridcolor: '#e5e5e5', zeroline: false, automargin: true },
    autosize: true,
    margin: { l: 70, r: 20, t: 50, b: 60 },
    font: { family: 'DejaVu Sans, Arial, sans-serif', size: 12 },
    paper_bgcolor: '#ffffff',
    plot_bgcolor: '#ffffff',
    hovermode: 'closest',
  };
}
