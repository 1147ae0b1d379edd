// `npm run build` (and `prepare`, so `npm ci` and a git install build too): the kite-token CLI bundle and the
// caller helper package (dist/client, dist/types).
import { buildCli } from './build-cli.ts';
import { buildClient } from './build-client.ts';

await Promise.all([buildCli(), buildClient()]);
