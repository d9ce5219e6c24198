// A uPlot line chart of the per-minute series (x: epoch seconds).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface SeriesSpec {
  label: string;
  color: string;
  values: (number | null)[];
}

export function Chart(props: { title: string; xs: number[]; series: SeriesSpec[]; unit?: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(280, Math.min(560, box.current.clientWidth || 480));
    const plot = new uPlot(
      {
        title: props.title,
        width,
        height: 180,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { values: (_u, vals) => vals.map((v) => `${v}${props.unit ?? ''}`) }],
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: false }))],
      },
      [props.xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData,
      box.current,
    );
    return () => plot.destroy();
  }, [props.title, props.xs, props.series, props.unit]);
  return <div class="chart" ref={box} />;
}
