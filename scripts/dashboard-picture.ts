// Draws docs/dashboard.svg, the picture of the stack's CloudWatch dashboard in the README: each widget of
// KiteDashboard in serverless.yml at its place on the 24-column grid, with its title and made-up example data (the
// console cannot be photographed from a build). serverless.yml stays the one source; a test redraws the picture
// and compares it with the committed file.
//
//   npm run dashboard:picture          # rewrites docs/dashboard.svg

import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PROJECT_DIR } from './package.ts';

// osls reads serverless.yml with js-yaml (its own dependency, which ships no types).
const { load } = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

export const PICTURE_PATH = join(PROJECT_DIR, 'docs', 'dashboard.svg');
const SERVERLESS_YML = join(PROJECT_DIR, 'serverless.yml');

export interface Widget {
  type: string;
  x: number;
  y: number;
  width: number;
  height: number;
  properties: Record<string, unknown>;
}
export interface Dashboard {
  widgets: Widget[];
}

type Yaml = Record<string, unknown>;
const at = (v: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((o, key) => (o && typeof o === 'object' ? (o as Yaml)[key] : undefined), v);

/** Replaces each ${name} of a Fn::Sub (or osls) template with what `value` gives for it. */
export function substitute(template: string, value: (name: string) => string): string {
  return template.replace(/\$\{([^}]+)\}/g, (_, name: string) => value(name));
}

/**
 * The dashboard serverless.yml deploys on the default stage, its references filled in the way osls and
 * CloudFormation would: functions by their deployed names, alarms by ARNs that end in their names.
 */
export function dashboardFromServerlessYml(text: string): Dashboard {
  const doc = load(text);
  const service = String(at(doc, 'service'));
  const stage = String(at(doc, 'provider', 'stage'));
  const region = String(at(doc, 'params', 'default', 'region'));
  const resources = (at(doc, 'resources', 'Resources') ?? {}) as Record<string, Yaml>;
  const osls = (name: string): string =>
    ({
      'self:service': service,
      'sls:stage': stage,
      'self:custom.metricsNamespace': String(at(doc, 'custom', 'metricsNamespace')),
      'self:custom.metricsService': `${service}-${stage}`,
      'AWS::Region': region,
    })[name] ?? `\${${name}}`;
  const functionNames = new Map(
    Object.keys((at(doc, 'functions') ?? {}) as Yaml).map((fn) => [
      `${fn[0]?.toUpperCase()}${fn.slice(1)}LambdaFunction`,
      `${service}-${stage}-${fn}`,
    ]),
  );
  const cloudFormation = (name: string): string => {
    const [id = '', attribute] = name.split('.');
    if (functionNames.has(id)) return functionNames.get(id) as string;
    const alarmName = at(resources[id], 'Properties', 'AlarmName');
    if (attribute === 'Arn' && typeof alarmName === 'string') {
      return `arn:aws:cloudwatch:${region}:123456789012:alarm:${substitute(alarmName, osls)}`;
    }
    throw new Error(`the dashboard names \${${name}}, which is neither a function nor an alarm`);
  };
  const body = at(resources, 'KiteDashboard', 'Properties', 'DashboardBody', 'Fn::Sub');
  if (typeof body !== 'string')
    throw new Error('serverless.yml has no KiteDashboard body (a Fn::Sub string)');
  return JSON.parse(substitute(substitute(body, osls), cloudFormation)) as Dashboard;
}

// ---- example data ---------------------------------------------------------------------------------------

const HOURS = 48;

/** A repeatable wobble in [-1, 1], so that the picture is the same on every run. */
function wobble(seed: string, i: number): number {
  let h = 2166136261;
  for (const c of `${seed}:${i}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return ((h >>> 0) % 2001) / 1000 - 1;
}

/** Hour of the IST day of example point i (the series end at 14:00 IST). */
const istHour = (i: number) => (i + 14 - HOURS + 48) % 24;

const EXAMPLES: Record<string, (series: number, i: number) => number> = {
  // Every token dies at 06:00 IST; the second account logs in daily and is renewed at 08:00.
  MinutesToExpiry: (s, i) => {
    const h = istHour(i);
    if (s === 1 && h >= 6 && h < 8) return 0;
    return (((29 - h) % 24) + 1) * 60 - 1;
  },
  ReadyForMarketOpen: (s, i) => (s === 1 && i === 4 ? 0 : 1),
  TokenAccepted: () => 1,
  VerificationInconclusive: () => 0,
  RefreshSucceeded: (_, i) => (istHour(i) === 6 ? 1 : 0),
  LoginSucceeded: (_, i) => (istHour(i) === 8 ? 1 : 0),
  LoginFailed: (_, i) => (i === 33 ? 1 : 0),
  RefreshFailed: () => 0,
  NotifyFailed: (s, i) => (s === 1 && i === 32 ? 1 : 0),
  LoginRequired: (_, i) => ([6, 7].includes(istHour(i)) ? 1 : 0),
  LoginReminderSent: (_, i) => ([8, 9].includes(istHour(i)) ? 1 : 0),
  TickCompleted: () => 1,
  Errors: (s, i) => (s === 0 && i === 20 ? 1 : 0),
};

function exampleValue(metric: string, stat: string, series: number, i: number): number {
  const example = EXAMPLES[metric];
  if (example) return example(series, i);
  const noise = wobble(`${metric}${stat}${series}`, i);
  if (metric === 'KiteLatency') return stat === 'p99' ? 320 + 80 * noise : 110 + 20 * noise;
  if (metric === 'Duration') return (series === 0 ? 420 : series === 1 ? 260 : 310) + 90 * noise;
  return 0;
}

interface Series {
  label: string;
  values: number[];
}

interface MetricEntry {
  metric: string;
  stat: string;
  label: string;
  /** Example series a SEARCH stands for: one per account (or channel) it would find. */
  searchDimension?: string;
}

const SEARCH_EXAMPLES: Record<string, string[]> = {
  Account: ['AB1234', 'CD5678'],
  Channel: ['sns', 'telegram'],
};

function metricEntry(entry: unknown[], widgetStat: string): MetricEntry {
  const last = entry[entry.length - 1];
  const options = (last && typeof last === 'object' ? last : {}) as Yaml;
  if (typeof options.expression === 'string') {
    const search = /^SEARCH\('\{[^,]+,(\w+),[^}]*\}.*MetricName="(\w+)"', '(\w+)'/.exec(options.expression);
    if (!search) throw new Error(`cannot draw the expression ${options.expression}`);
    const [, dimension = '', metric = '', stat = ''] = search;
    return { metric, stat, label: metric, searchDimension: dimension };
  }
  const metric = String(entry[1]);
  return {
    metric,
    stat: String(options.stat ?? widgetStat),
    label: String(options.label ?? metric),
  };
}

/** The example series a metric widget draws, with the SEARCH ones named as examples. */
function widgetSeries(w: Widget): Series[] {
  const points = w.properties.period === 86400 ? 7 : HOURS;
  const entries = (w.properties.metrics as unknown[][]).map((e) => metricEntry(e, String(w.properties.stat)));
  return entries.flatMap((e, n) => {
    const names = e.searchDimension ? (SEARCH_EXAMPLES[e.searchDimension] ?? ['example']) : [e.label];
    return names.map((name, s) => ({
      label: e.searchDimension ? `${name} (example)` : name,
      values: Array.from({ length: points }, (_, i) =>
        exampleValue(e.metric, e.stat, e.searchDimension ? s : n, i),
      ),
    }));
  });
}

// ---- drawing ---------------------------------------------------------------------------------------------

const COLUMN = 44;
const ROW = 30;
const GAP = 8;
const MARGIN = 16;
const HEADER = 56;
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const CHAR = 6.6;
const SMALL_CHAR = 5.6;

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const clip = (s: string, width: number) => {
  const max = Math.floor(width / CHAR);
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
};
const text = (x: number, y: number, s: string, attrs = '') =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(s)}</text>`;

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Legend items, left to right, a new line when one does not fit. */
function legendRows(
  series: Series[],
  width: number,
): Array<Array<{ label: string; colour: string; x: number }>> {
  const rows: Array<Array<{ label: string; colour: string; x: number }>> = [[]];
  let x = 0;
  for (const [i, s] of series.entries()) {
    const itemWidth = 13 + Math.min(width - 13, s.label.length * SMALL_CHAR) + 12;
    if (x > 0 && x + itemWidth > width) {
      rows.push([]);
      x = 0;
    }
    rows[rows.length - 1]?.push({
      label: clip(s.label, width - 13),
      colour: COLOURS[i % COLOURS.length] ?? '',
      x,
    });
    x += itemWidth;
  }
  return rows;
}

function legend(rows: ReturnType<typeof legendRows>, box: Box): string[] {
  return rows.flatMap((row, r) =>
    row.flatMap((item) => {
      const y = box.y + r * 14;
      return [
        `<rect x="${box.x + item.x}" y="${y - 8}" width="9" height="9" fill="${item.colour}"/>`,
        text(box.x + item.x + 13, y, item.label, 'class="small"'),
      ];
    }),
  );
}

/** 1, 2 or 5 times a power of ten, at least v. */
function roundUp(v: number): number {
  const power = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 5, 10].find((m) => m * power >= v) ?? 10) * power;
}

function timeSeries(w: Widget, box: Box): string[] {
  const series = widgetSeries(w);
  const yAxis = at(w.properties, 'yAxis', 'left') as Yaml | undefined;
  const annotations = (at(w.properties, 'annotations', 'horizontal') ?? []) as Array<{
    label: string;
    value: number;
  }>;
  const top = Math.max(1, ...series.flatMap((s) => s.values), ...annotations.map((a) => a.value));
  const max = typeof yAxis?.max === 'number' ? yAxis.max : roundUp(top * 1.1);
  const rows = legendRows(series, box.w);
  const plot = { x: box.x + 34, y: box.y + 4, w: box.w - 40, h: box.h - 12 - 14 * rows.length };
  const yOf = (v: number) => plot.y + plot.h - (v / max) * plot.h;
  const out = [
    `<line x1="${plot.x}" y1="${plot.y + plot.h}" x2="${plot.x + plot.w}" y2="${plot.y + plot.h}" class="axis"/>`,
    text(plot.x - 4, plot.y + 8, String(max), 'class="small" text-anchor="end"'),
    text(plot.x - 4, plot.y + plot.h, '0', 'class="small" text-anchor="end"'),
  ];
  for (const a of annotations) {
    out.push(
      `<line x1="${plot.x}" y1="${yOf(a.value)}" x2="${plot.x + plot.w}" y2="${yOf(a.value)}" class="note"/>`,
    );
    out.push(text(plot.x + plot.w - 2, yOf(a.value) - 3, a.label, 'class="small" text-anchor="end"'));
  }
  for (const [i, s] of series.entries()) {
    const step = plot.w / Math.max(1, s.values.length - 1);
    const points = s.values.map((v, n) => `${(plot.x + n * step).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ');
    out.push(
      `<polyline points="${points}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.6"/>`,
    );
  }
  return [...out, ...legend(rows, { x: box.x, y: plot.y + plot.h + 18, w: box.w, h: 0 })];
}

/** One row per metric, one latest value per series (per account). */
function singleValue(w: Widget, box: Box): string[] {
  const entries = (w.properties.metrics as unknown[][]).map((e) => metricEntry(e, String(w.properties.stat)));
  const series = widgetSeries(w);
  const perRow = series.length / entries.length;
  const rowHeight = box.h / entries.length;
  return entries.flatMap((e, row) => {
    const y = box.y + row * rowHeight;
    const width = box.w / perRow;
    return [
      text(box.x, y + 10, e.metric, 'class="small" font-weight="bold"'),
      ...series
        .slice(row * perRow, (row + 1) * perRow)
        .flatMap((s, i) => [
          text(box.x + i * width, y + 24, clip(s.label, width - 6), 'class="small"'),
          text(box.x + i * width, y + 56, String(s.values[s.values.length - 1]), 'class="big"'),
        ]),
    ];
  });
}

/** Words into lines of at most `width` pixels. */
function wrap(words: string[], width: number): string[] {
  const lines: string[] = [];
  for (const word of words) {
    const last = lines[lines.length - 1];
    if (last !== undefined && (last.length + 1 + word.length) * CHAR <= width)
      lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}

function markdown(w: Widget, box: Box): string[] {
  const [heading = '', ...rest] = String(w.properties.markdown).replace(/[`*]/g, '').split('\n');
  const lines = wrap(rest.join(' ').split(/\s+/).filter(Boolean), box.w);
  const room = Math.max(1, Math.floor((box.h - 12) / 14));
  return [
    text(box.x, box.y + 12, heading.replace(/^#+\s*/, ''), 'class="title"'),
    ...lines.slice(0, room).map((line, i) => text(box.x, box.y + 30 + i * 14, line)),
  ];
}

function alarms(w: Widget, box: Box): string[] {
  const names = (w.properties.alarms as string[]).map((arn) => arn.slice(arn.indexOf(':alarm:') + 7));
  const perRow = Math.max(1, Math.floor(box.w / 300));
  const width = box.w / perRow;
  return names.flatMap((name, i) => {
    const x = box.x + (i % perRow) * width;
    const y = box.y + 6 + Math.floor(i / perRow) * 20;
    return [
      `<rect x="${x}" y="${y}" width="34" height="14" rx="3" fill="#2ca02c"/>`,
      text(x + 17, y + 11, 'OK', 'class="small" fill="#fff" text-anchor="middle"'),
      text(x + 40, y + 11, clip(name, width - 46), 'class="small"'),
    ];
  });
}

function drawWidget(w: Widget): string {
  const x = MARGIN + w.x * COLUMN;
  const y = HEADER + w.y * ROW;
  const width = w.width * COLUMN - GAP;
  const height = w.height * ROW - GAP;
  const title = String(w.properties.title ?? '');
  const content = { x: x + 10, y: y + (title ? 30 : 10), w: width - 20, h: height - (title ? 40 : 20) };
  const body =
    w.type === 'text'
      ? markdown(w, content)
      : w.type === 'alarm'
        ? alarms(w, content)
        : w.properties.view === 'singleValue'
          ? singleValue(w, content)
          : timeSeries(w, content);
  return [
    `<g>`,
    `<rect x="${x}" y="${y}" width="${width}" height="${height}" class="widget"/>`,
    title ? text(x + 10, y + 19, clip(title, width - 20), 'class="title"') : '',
    ...body,
    `</g>`,
  ]
    .filter(Boolean)
    .join('\n');
}

/** The picture: the dashboard's layout, its titles, and example data, said to be examples. */
export function drawDashboard(dashboard: Dashboard): string {
  const rows = Math.max(...dashboard.widgets.map((w) => w.y + w.height));
  const width = MARGIN * 2 + 24 * COLUMN - GAP;
  const height = HEADER + rows * ROW + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    '<title>CloudWatch dashboard KiteDashboard: layout with example data</title>',
    '<style>.widget{fill:#fff;stroke:#d5dbdb}.title{font-weight:bold;font-size:12px}.small{font-size:10px}' +
      '.big{font-size:34px}.axis{stroke:#aab7b8}.note{stroke:#879596;stroke-dasharray:4 3}.banner{fill:#b7410e;font-weight:bold;font-size:14px}</style>',
    `<rect width="${width}" height="${height}" fill="#f2f3f3"/>`,
    text(MARGIN, 24, 'CloudWatch dashboard KiteDashboard: layout with example data', 'class="banner"'),
    text(
      MARGIN,
      42,
      'Boxes, places and titles are the dashboard serverless.yml deploys; every line, number and alarm state is made up.',
    ),
    ...dashboard.widgets.map(drawWidget),
    text(
      MARGIN,
      height - 10,
      'Example data, not measurements. Drawn by scripts/dashboard-picture.ts (npm run dashboard:picture).',
      'class="small"',
    ),
    '</svg>',
    '',
  ].join('\n');
}

/** The picture of the dashboard serverless.yml deploys now. */
export async function dashboardPicture(): Promise<string> {
  return drawDashboard(dashboardFromServerlessYml(await readFile(SERVERLESS_YML, 'utf8')));
}

if (import.meta.main) {
  await writeFile(PICTURE_PATH, await dashboardPicture());
  process.stderr.write(`Wrote ${PICTURE_PATH}\n`);
}
