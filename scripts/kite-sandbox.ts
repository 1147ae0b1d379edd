// `npm run sandbox`: the Kite sandbox alone on loopback, for trying a client or the daily login by hand. The
// sandbox module itself never starts a server on import, so bundling it (the CLI's demo) cannot start a second one.
import { startKiteSandbox } from '../testing/kite-sandbox.ts';

async function main(): Promise<void> {
  const apiKey = process.env.KITE_API_KEY || 'sandbox_key';
  const apiSecret = process.env.KITE_API_SECRET || 'sandbox_secret';
  const sandbox = await startKiteSandbox({
    apiKey,
    apiSecret,
    port: Number(process.env.PORT ?? 0) || 0,
    // Opened by hand in a browser: Kite's login page with its one button, not an instant redirect.
    loginPage: true,
    ...(process.env.KITE_REDIRECT_URL ? { redirectUrl: process.env.KITE_REDIRECT_URL } : {}),
  });
  const secretNote = process.env.KITE_API_SECRET
    ? 'from KITE_API_SECRET'
    : `"${apiSecret}" (set KITE_API_SECRET to change)`;
  process.stdout.write(
    [
      `Kite sandbox listening on ${sandbox.url}`,
      `  api_key:    ${apiKey}`,
      `  api_secret: ${secretNote}`,
      `  login page: ${sandbox.loginUrl()}${process.env.KITE_REDIRECT_URL ? '' : ' (set KITE_REDIRECT_URL to enable)'}`,
      'Local simulation only: its tokens do not work on Kite. Ctrl+C to stop.',
      '',
    ].join('\n'),
  );
  const stop = () => void sandbox.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

try {
  await main();
} catch (error: unknown) {
  process.stderr.write(`kite sandbox: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
