/**
 * HTML sections of the experiment report (pure functions: data in, HTML text out). Paths in the
 * page are relative to the run folder, where report.html lives, so it opens from disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { MetricFloors, PointResult, ReportInput } from '../experiments/types';
import type { SettingAggregate } from '../results/aggregate';
import { escapeHtml, formatNumber, protocolSummary } from '../results/table';

export function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${escapeHtml(title)}</h2>\n${body}\n</section>`;
}

/** A relative path as a URL (each segment percent-encoded, '/' separators). */
export function relUrl(rel: string): string {
  return rel.split(/[\\/]/).map(encodeURIComponent).join('/');
}

export function floorsHtml(floors: MetricFloors | undefined, metric: string, kvd: string): string {
  if (!floors) return '<p class="note">No floors were computed for this run.</p>';
  return (
    `<table class="grid"><thead><tr><th>floor</th><th>${escapeHtml(metric)}</th><th>${escapeHtml(kvd)}</th><th>what it is</th></tr></thead><tbody>` +
    `<tr><td>real vs real</td><td>${formatNumber(floors.real_vs_real.fvd)}</td><td>${formatNumber(floors.real_vs_real.kvd)}</td><td>two disjoint sets of real clips: the lowest value this protocol can show</td></tr>` +
    `<tr><td>AE reconstruction</td><td>${formatNumber(floors.reconstruction.fvd)}</td><td>${formatNumber(floors.reconstruction.kvd)}</td><td>autoencoder reconstructions of real clips vs real clips: the best a latent model can reach</td></tr>` +
    '</tbody></table>' +
    (floors.object_consistency
      ? `<p>Object consistency (fraction of clips whose object keeps its shape and velocity, metrics/OBJECT-CONSISTENCY.md): real clips ${formatNumber(floors.object_consistency.real)}, autoencoder reconstructions ${formatNumber(floors.object_consistency.reconstruction)}; without the edge-sharpness test (motion consistency): real ${formatNumber(floors.object_consistency.motion_real)}, reconstructions ${formatNumber(floors.object_consistency.motion_reconstruction)}.` +
        (floors.object_consistency.polygons_real !== undefined
          ? ` Consistent clips whose object reads as a square or triangle (polygons, metrics/shape-kind.ts): real ${formatNumber(floors.object_consistency.polygons_real)}, reconstructions ${formatNumber(floors.object_consistency.polygons_reconstruction ?? NaN)}.`
          : '') +
        (floors.object_consistency.regular_real !== undefined
          ? ` Consistent clips whose object's outline is regular (a disc, square or triangle rather than an elongated or lumpy blob; regular, metrics/shape-kind.ts): real ${formatNumber(floors.object_consistency.regular_real)}, reconstructions ${formatNumber(floors.object_consistency.regular_reconstruction ?? NaN)}.`
          : '') +
        '</p>'
      : '')
  );
}

export function stagesHtml(stages: ReportInput['stages']): string {
  if (stages.length === 0) return '<p class="note">No stages recorded.</p>';
  const rows = stages
    .map((s) => `<tr><td>${escapeHtml(s.id)}</td><td>${escapeHtml(s.kind)}</td><td><a href="${escapeHtml(relUrl(s.outDir))}">${escapeHtml(s.outDir)}</a></td><td>${s.wall_s === undefined ? '–' : formatNumber(s.wall_s)}</td></tr>`)
    .join('\n');
  return `<table class="grid"><thead><tr><th>stage</th><th>kind</th><th>output</th><th>wall s</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function configHtml(input: ReportInput): string {
  return (
    `<details><summary>resolved configuration of <code>${escapeHtml(input.file)}</code> (includes and --set applied)</summary>` +
    `<pre>${escapeHtml(stringify(input.resolved))}</pre></details>`
  );
}

/** The distinct metric protocols, each with the settings that used it and the full record. */
export function protocolsHtml(points: readonly PointResult[], aggs: readonly SettingAggregate[]): string {
  const byProto = new Map<string, { protocol: Record<string, unknown>; labels: Set<string> }>();
  for (const a of aggs) {
    for (const p of a.points) {
      const k = JSON.stringify(p.protocol);
      const e = byProto.get(k) ?? { protocol: p.protocol, labels: new Set<string>() };
      e.labels.add(a.label);
      byProto.set(k, e);
    }
  }
  if (points.length === 0) return '<p class="note">No finished sweep points.</p>';
  const n = points[0];
  const head = `<p>Metric <b>${escapeHtml(n.metric)}</b>${n.metric === 'fvd' ? ' (I3D features)' : ': the Fréchet distance on the named proxy features, a stand-in for FVD that is not comparable with published FVD values'}; ${n.n_fake} generated and ${n.n_real} real clips per computation.</p>`;
  const items = [...byProto.values()].map(
    (e, i) =>
      `<details${i === 0 ? ' open' : ''}><summary>protocol ${i + 1}: ${escapeHtml(protocolSummary(e.protocol))} — used by ${e.labels.size} setting${e.labels.size === 1 ? '' : 's'}: ${escapeHtml([...e.labels].join('; '))}</summary>` +
      `<pre>${escapeHtml(JSON.stringify(e.protocol, null, 2))}</pre></details>`,
  );
  return head + items.join('\n');
}

/**
 * Sample videos per setting, side by side: one card per setting with each seed's first sample
 * (GIF/PNG as <img>, MP4/WebM as a muted looping <video>). Files that do not exist are named in
 * a note instead of showing a broken element.
 */
export function samplesHtml(runDir: string, aggs: readonly SettingAggregate[]): string {
  const cards: string[] = [];
  for (const a of aggs) {
    const cells: string[] = [];
    for (const p of a.points) {
      const rel = p.samples[0];
      if (!rel) continue;
      const exists = fs.existsSync(path.join(runDir, rel));
      const cap = `<figcaption>seed ${p.seed}</figcaption>`;
      if (!exists) cells.push(`<figure class="missing"><span>missing: ${escapeHtml(rel)}</span>${cap}</figure>`);
      else if (/\.(mp4|webm)$/i.test(rel))
        cells.push(`<figure><video src="${escapeHtml(relUrl(rel))}" autoplay loop muted playsinline preload="auto"></video>${cap}</figure>`);
      else cells.push(`<figure><img src="${escapeHtml(relUrl(rel))}" alt="${escapeHtml(`${a.label} seed ${p.seed}`)}">${cap}</figure>`);
    }
    if (cells.length > 0) cards.push(`<div class="card"><h3>${escapeHtml(a.label)}</h3><div class="videos">${cells.join('')}</div></div>`);
  }
  if (cards.length === 0) return '<p class="note">No sample videos were recorded for the sweep points.</p>';
  return `<div class="cards">${cards.join('\n')}</div>`;
}

export const REPORT_CSS = `
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:16px 24px}
header h1{margin:0 0 6px;font-size:22px}
header p{margin:2px 0;font-size:13px;opacity:.9}
nav{padding:8px 24px;background:#e9eef3;font-size:13px}
nav a{margin-right:14px;color:#1f3b57}
main{padding:8px 24px 40px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;margin:14px 0}
h2{font-size:17px;margin:6px 0 10px;color:#1f3b57}
h3{font-size:13px;margin:0 0 6px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 7px}
th{background:#f0f3f6}
.scroll{overflow-x:auto;max-width:100%}
.note{color:#666;font-size:13px}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:5px;padding:8px;background:#fdfdfd}
.videos{display:flex;gap:6px}
figure{margin:0;text-align:center}
figure img,figure video{width:128px;height:auto;image-rendering:pixelated;display:block;background:#000}
figcaption{font-size:11px;color:#555}
figure.missing span{display:block;width:128px;font-size:11px;color:#a00}
.plot{margin:8px 0 18px}
`;
