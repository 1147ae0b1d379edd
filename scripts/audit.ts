// CI's dependency audit: `npm audit` over the whole tree must report no high or critical advisory. The whole tree,
// not --omit=dev: the functions bundle Powertools, middy and the SNS client, which are dev dependencies so that the
// published caller helper installs only the SDK clients it uses.
// When the registry's audit service cannot be reached, it says so plainly and does not pretend to have passed.
import { spawnSync } from 'node:child_process';

const run = spawnSync('npm', ['audit', '--json'], { encoding: 'utf8' });
let report: {
  statusCode?: number;
  message?: string;
  error?: unknown;
  metadata?: { vulnerabilities?: Record<string, number> };
};
try {
  report = JSON.parse(run.stdout || '{}');
} catch {
  process.stderr.write(`npm audit printed no JSON (exit ${run.status}):\n${run.stderr}\n`);
  process.exit(1);
}
const counts = report.metadata?.vulnerabilities;
if (!counts) {
  const why =
    report.message ?? (typeof report.error === 'object' ? JSON.stringify(report.error) : 'no report');
  process.stdout.write(`npm audit: NOT RUN, the audit service did not answer (${why})\n`);
  process.exit(0);
}
const serious = (counts.high ?? 0) + (counts.critical ?? 0);
process.stdout.write(`npm audit (all dependencies): ${JSON.stringify(counts)}\n`);
process.exit(serious > 0 ? 1 : 0);
