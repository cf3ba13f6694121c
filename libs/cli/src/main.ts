/**
 * `faceprint`: the command line. Today: `eval verify`, `eval detect`, `eval calibrate` and
 * `receipt verify`. The gateway commands (up, enroll, verify, compare, identify, detect, erase,
 * export) arrive with the gateway.
 */
import { CALIBRATE_USAGE, evalCalibrate } from './eval/calibrate.js';
import { DETECT_USAGE, evalDetect } from './eval/detect.js';
import { evalVerify, VERIFY_USAGE } from './eval/verify.js';
import { RECEIPT_VERIFY_USAGE, receiptVerify } from './receipt/verify.js';

const USAGE = `usage:\n${[VERIFY_USAGE, DETECT_USAGE, CALIBRATE_USAGE, RECEIPT_VERIFY_USAGE].map((usage) => `  ${usage.split('\n').join('\n  ')}`).join('\n\n')}\n`;

async function main(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  if (group === 'eval' && command === 'verify') return evalVerify(rest);
  if (group === 'eval' && command === 'detect') return evalDetect(rest);
  if (group === 'eval' && command === 'calibrate') return evalCalibrate(rest);
  if (group === 'receipt' && command === 'verify') return receiptVerify(rest);
  process.stderr.write(USAGE);
  return argv.length === 0 || group === '--help' ? 0 : 2;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`faceprint: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
