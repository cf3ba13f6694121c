/**
 * Makes the matcher's two keys in a PKCS#11 token, once, before the first matcher starts on it:
 * `npm run -s hsm:create-keys -w @faceprint/matcher`, with the same FACEPRINT_MATCHER_PKCS11_*
 * settings as the matcher (docs/deploy.md). Keys the token already holds are checked and kept.
 * Exit 0: both keys are there; 2: the settings are wrong; 1: the token refused.
 */
import { ConfigError } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { createHsmKeys } from './compliance/pkcs11-master-key.js';
import { loadMatcherConfig } from './matcher-config.js';

const log = createLogger({ service: 'matcher', level: 'warn' });
try {
  const { hsm } = loadMatcherConfig(process.env);
  if (!hsm) throw new ConfigError({ FACEPRINT_MATCHER_PKCS11_LIBRARY: "is required: the HSM's PKCS#11 library (a .so)" });
  const { created, found } = await createHsmKeys(hsm, log);
  for (const label of created) console.log(`made key "${label}" in token "${hsm.tokenLabel}"`);
  for (const label of found) console.log(`key "${label}" is already in token "${hsm.tokenLabel}"; kept`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = error instanceof ConfigError ? 2 : 1;
}
