// Minimal SVG line charts for the benchmark results (a few series against concurrency); hand-written
// because the charts are simple and a plotting dependency would outweigh them.

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
  width?: number;
  height?: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 320;
  const m = { l: 64, r: 150, t: 36, b: 48 };
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => Number.isFinite(y) && y > 0);
  const fy = o.logY ? Math.log10 : (v: number) => v;
  const yMin = o.logY ? 10 ** Math.floor(Math.log10(Math.min(...ys))) : 0;
  const yMax = o.logY ? 10 ** Math.ceil(Math.log10(Math.max(...ys))) : Math.max(...ys) * 1.15;
  // x: categorical positions (concurrency 1, 4, 16, 64 are evenly spaced)
  const px = (x: number): number => m.l + ((W - m.l - m.r) * xs.indexOf(x)) / Math.max(1, xs.length - 1);
  const py = (y: number): number =>
    H - m.b - ((H - m.t - m.b) * (fy(Math.max(y, yMin)) - fy(yMin))) / (fy(yMax) - fy(yMin));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#333"/>`,
  ];
  const ticks = o.logY
    ? Array.from({ length: Math.round(Math.log10(yMax / yMin)) + 1 }, (_, i) => yMin * 10 ** i)
    : Array.from({ length: 5 }, (_, i) => (yMax * i) / 4);
  for (const t of ticks) {
    const y = py(t);
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/>`);
    parts.push(
      `<text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${t >= 100 ? Math.round(t) : Number(t.toPrecision(2))}</text>`,
    );
  }
  for (const x of xs) parts.push(`<text x="${px(x)}" y="${H - m.b + 16}" text-anchor="middle">${x}</text>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && p[1] > 0);
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    for (const p of pts)
      parts.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = m.t + 10 + i * 18;
    parts.push(
      `<line x1="${W - m.r + 12}" y1="${ly}" x2="${W - m.r + 32}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(`<text x="${W - m.r + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
