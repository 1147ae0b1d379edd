#!/usr/bin/env node
// Entry point of the kite-token command (see lib/cli.ts).
import { runCli } from '../lib/cli.ts';

process.exitCode = await runCli(process.argv.slice(2));
