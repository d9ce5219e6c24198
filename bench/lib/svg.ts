// A latency CDF as a small standalone SVG (log-x axis), in the style of the
// OpenLambda paper's Figure 2. No plotting dependency: a few lines and labels.

export interface CdfSeries {
  label: string;
  /** Latencies in ms (any order). */
  values: number[];
}

export interface Marker {
  x: number;
  label: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function tickLabel(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

export function cdfSvg(title: string, series: CdfSeries[], markers: Marker[] = []): string {
  const W = 720;
  const H = 420 + series.length * 18 + 10; // the legend sits under the plot
  const m = { l: 60, r: 20, t: 40, b: 50 };
  const pw = W - m.l - m.r;
  const ph = 420 - m.t - m.b;
  const all = series.flatMap((s) => s.values).concat(markers.map((k) => k.x)).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...all)));
  const hi = Math.ceil(Math.log10(Math.max(...all)));
  const x = (v: number) => m.l + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / Math.max(1, hi - lo)) * pw;
  const y = (f: number) => m.t + (1 - f) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  // Grid and axes.
  for (let d = lo; d <= hi; d++) {
    const v = 10 ** d;
    out.push(`<line x1="${x(v)}" y1="${m.t}" x2="${x(v)}" y2="${m.t + ph}" stroke="#ddd"/>`);
    out.push(`<text x="${x(v)}" y="${m.t + ph + 16}" text-anchor="middle">${tickLabel(v)}</text>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${m.l}" y1="${y(f)}" x2="${m.l + pw}" y2="${y(f)}" stroke="#ddd"/>`);
    out.push(`<text x="${m.l - 6}" y="${y(f) + 4}" text-anchor="end">${f * 100}%</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle">latency (log scale)</text>`);
  out.push(`<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">fraction of calls</text>`);
  for (const k of markers) {
    out.push(`<line x1="${x(k.x)}" y1="${m.t}" x2="${x(k.x)}" y2="${m.t + ph}" stroke="#555" stroke-dasharray="5 4"/>`);
    out.push(`<text x="${x(k.x) - 4}" y="${m.t + 14}" fill="#555" text-anchor="end" stroke="white" stroke-width="3" paint-order="stroke">${esc(k.label)}</text>`);
  }
  // The legend, under the plot.
  const lx = m.l + 10;
  const ly0 = m.t + ph + 62;
  const legend: string[] = [];
  // One curve per series, thinned to at most ~400 points.
  series.forEach((s, i) => {
    const v = [...s.values].sort((a, b) => a - b);
    if (v.length === 0) return;
    const step = Math.max(1, Math.floor(v.length / 400));
    const pts: string[] = [`${x(v[0]!).toFixed(1)},${y(0).toFixed(1)}`];
    for (let j = 0; j < v.length; j += step) pts.push(`${x(v[j]!).toFixed(1)},${y((j + 1) / v.length).toFixed(1)}`);
    pts.push(`${x(v[v.length - 1]!).toFixed(1)},${y(1).toFixed(1)}`);
    const color = COLORS[i % COLORS.length]!;
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    const ly = ly0 + i * 18;
    legend.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    legend.push(`<text x="${lx + 30}" y="${ly}">${esc(s.label)}</text>`);
  });
  out.push(...legend, '</svg>');
  return out.join('\n') + '\n';
}
