#!/usr/bin/env node
// Entry point of the kite-token command (see lib/cli/cli.ts).
import { runCli } from '../lib/cli/cli.ts';
import { stopOnSignalsAfterUnfinishedWork } from '../lib/cli/signals.ts';

stopOnSignalsAfterUnfinishedWork();
process.exitCode = await runCli(process.argv.slice(2));
