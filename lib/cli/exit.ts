// The kite-token command's exit codes: scripts and cron jobs branch on them.
export const EXIT = { ok: 0, failed: 1, badInput: 2, loginRequired: 3 } as const;
