// The caller helper's public entry point: what a trading Lambda imports as `kite-token-refresh/client`. Everything
// else in this package is private.

export type { BrokerConfig } from '../engine/broker-config.ts';
export { AppError, ConfigError, KiteApiError, LoginRequiredError } from '../shared/errors.ts';
export type { OnDemandResponse } from '../shared/on-demand-response.ts';
export type { ConfigStore } from '../store/config-store.ts';
export { isKiteAuthError } from './auth-error.ts';
export {
  createKiteAuth,
  getAccessToken,
  type KiteAuth,
  type KiteAuthOptions,
  withKiteAuth,
} from './kite-auth.ts';
export { TokenRefreshError } from './refresh-function.ts';
