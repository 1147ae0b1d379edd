// The README's picture of the dashboard: drawn from serverless.yml, so the committed file must be what the
// script draws now, and it must say its data is made up.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  dashboardFromServerlessYml,
  dashboardPicture,
  drawDashboard,
  PICTURE_PATH,
} from '../../scripts/dashboard-picture.ts';
import { PROJECT_DIR } from '../../scripts/package.ts';

const serverlessYml = () => readFile(join(PROJECT_DIR, 'serverless.yml'), 'utf8');

describe('docs/dashboard.svg', () => {
  it('is the picture of the dashboard serverless.yml deploys (npm run dashboard:picture redraws it)', async () => {
    expect(await readFile(PICTURE_PATH, 'utf8')).toBe(await dashboardPicture());
  });

  it('says it is the layout with example data', async () => {
    const svg = await readFile(PICTURE_PATH, 'utf8');
    expect(svg).toMatch(/<title>[^<]*layout with example data<\/title>/);
    expect(svg).toContain('Example data, not measurements.');
  });

  it('draws every widget title and every alarm', async () => {
    const dashboard = dashboardFromServerlessYml(await serverlessYml());
    const svg = drawDashboard(dashboard);
    const titles = dashboard.widgets.flatMap((w) =>
      typeof w.properties.title === 'string' ? [w.properties.title] : [],
    );
    expect(titles.length).toBeGreaterThan(10);
    // A long title is cut to fit its box with an ellipsis; its start is still there.
    for (const title of titles) expect(svg).toContain(title.slice(0, 20).replace(/&/g, '&amp;'));
    expect(svg.match(/>OK</g)).toHaveLength(
      dashboard.widgets.flatMap((w) => (w.type === 'alarm' ? (w.properties.alarms as string[]) : [])).length,
    );
  });

  it('refuses a dashboard that names something other than a function or an alarm', async () => {
    const reference = (name: string) => `\${${name}}`;
    const yml = (await serverlessYml()).replace(
      reference('NoCompletedTickAlarm.Arn'),
      reference('AlertTopic.Arn'),
    );
    expect(() => dashboardFromServerlessYml(yml)).toThrow(/AlertTopic\.Arn/);
  });
});
