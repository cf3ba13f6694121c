/** Curves drawn as SVG and written as PNG (sharp renders the SVG). */
import sharp from 'sharp';

/** One curve to draw. */
export interface Series {
  readonly label: string;
  readonly points: readonly { x: number; y: number }[];
}

/** Options of a plot. */
export interface PlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** Plot x on a log scale from this value (e.g. 1e-4 for FAR). */
  readonly xLogFrom?: number;
  readonly xMax: number;
  /** Plot y on a log scale from this value to 1 (e.g. 1e-4 for a DET curve's miss rate). */
  readonly yLogFrom?: number;
}

const escape = (text: string) => text.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);

/** Writes a line plot to `file` as PNG. */
export async function writePlot(file: string, series: readonly Series[], options: PlotOptions): Promise<void> {
  const [width, height, left, right, top, bottom] = [800, 600, 80, 30, 50, 70];
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const xScale = (x: number) => {
    if (options.xLogFrom) {
      const lo = Math.log10(options.xLogFrom);
      const hi = Math.log10(options.xMax);
      return left + ((Math.log10(Math.max(x, options.xLogFrom)) - lo) / (hi - lo)) * plotWidth;
    }
    return left + (x / options.xMax) * plotWidth;
  };
  const yScale = (y: number) => {
    if (options.yLogFrom) return top + (Math.log10(Math.max(y, options.yLogFrom)) / Math.log10(options.yLogFrom)) * plotHeight;
    return top + (1 - y) * plotHeight;
  };
  const yTicks = options.yLogFrom ? Array.from({ length: Math.round(-Math.log10(options.yLogFrom)) + 1 }, (_, i) => options.yLogFrom! * 10 ** i) : [0, 0.2, 0.4, 0.6, 0.8, 1];
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const ticks = options.xLogFrom
    ? Array.from({ length: Math.round(Math.log10(options.xMax / options.xLogFrom)) + 1 }, (_, i) => options.xLogFrom! * 10 ** i)
    : Array.from({ length: 6 }, (_, i) => (options.xMax * i) / 5);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <rect width="100%" height="100%" fill="white"/>
  <text x="${width / 2}" y="30" font-size="20" text-anchor="middle" font-family="sans-serif">${escape(options.title)}</text>
  <rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>
  ${yTicks.map((y) => `<line x1="${left}" x2="${left + plotWidth}" y1="${yScale(y)}" y2="${yScale(y)}" stroke="#ddd"/><text x="${left - 8}" y="${yScale(y) + 5}" font-size="13" text-anchor="end" font-family="sans-serif">${options.yLogFrom ? y.toExponential(0) : y.toFixed(1)}</text>`).join('')}
  ${ticks.map((x) => `<line x1="${xScale(x)}" x2="${xScale(x)}" y1="${top}" y2="${top + plotHeight}" stroke="#ddd"/><text x="${xScale(x)}" y="${top + plotHeight + 20}" font-size="13" text-anchor="middle" font-family="sans-serif">${options.xLogFrom ? x.toExponential(0) : x.toFixed(2)}</text>`).join('')}
  <text x="${left + plotWidth / 2}" y="${height - 20}" font-size="15" text-anchor="middle" font-family="sans-serif">${escape(options.xLabel)}</text>
  <text x="20" y="${top + plotHeight / 2}" font-size="15" text-anchor="middle" font-family="sans-serif" transform="rotate(-90 20 ${top + plotHeight / 2})">${escape(options.yLabel)}</text>
  ${series.map((s, i) => `<polyline fill="none" stroke="${colours[i % colours.length]}" stroke-width="2" points="${s.points.filter((p) => p.x <= options.xMax).map((p) => `${xScale(p.x).toFixed(1)},${yScale(p.y).toFixed(1)}`).join(' ')}"/><text x="${left + 15}" y="${options.yLogFrom ? top + plotHeight - 15 - 20 * i : top + 25 + 20 * i}" font-size="14" fill="${colours[i % colours.length]}" font-family="sans-serif">${escape(s.label)}</text>`).join('')}
</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}
