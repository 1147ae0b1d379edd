// Every test file starts from a clean environment: no variable of the user's shell that the product, the AWS SDK or
// Powertools reads survives (testing/clean-env.ts), and Powertools loggers stay silent unless a test captures them.
// The CI token-leak sweep's log path is the one variable kept: it records tokens, it never changes behaviour.
import { cleanProcessEnv } from '../testing/clean-env.ts';

cleanProcessEnv();
