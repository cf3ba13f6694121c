/**
 * `faceprint`: the command line. The gateway commands (up, enroll, verify, compare, identify,
 * detect, erase, export, keys), the trainer's (models), the offline receipt verifier, and the
 * evaluation tools.
 */
import { FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { CALIBRATE_USAGE, evalCalibrate } from './eval/calibrate.js';
import { DETECT_USAGE, evalDetect } from './eval/detect.js';
import { evalVerify, VERIFY_USAGE } from './eval/verify.js';
import { COMPLIANCE_USAGE, erase, exportSubject } from './gateway/compliance-commands.js';
import { exitStatusFor, GLOBAL_USAGE } from './gateway/connection.js';
import { compare, detect, enroll, FACE_USAGE, gallery, identify, verify } from './gateway/face-commands.js';
import { keys, KEYS_USAGE } from './gateway/key-commands.js';
import { models, MODELS_USAGE } from './models/model-commands.js';
import { RECEIPT_VERIFY_USAGE, receiptVerify } from './receipt/verify.js';

const USAGE = `usage:
  faceprint up                          the whole mesh on this machine (the same as npm start)
${[FACE_USAGE, COMPLIANCE_USAGE, KEYS_USAGE, RECEIPT_VERIFY_USAGE, GLOBAL_USAGE, MODELS_USAGE, VERIFY_USAGE, DETECT_USAGE, CALIBRATE_USAGE].map((usage) => `  ${usage.split('\n').join('\n  ')}`).join('\n\n')}
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { enroll, verify, compare, identify, detect, gallery, erase, export: exportSubject, keys, models };

async function main(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  if (group === 'up') {
    // The local mesh runs in this process until Ctrl-C (it sets the exit status itself).
    await import('@faceprint/mesh/main');
    return new Promise<number>(() => {});
  }
  if (group === 'eval' && command === 'verify') return evalVerify(rest);
  if (group === 'eval' && command === 'detect') return evalDetect(rest);
  if (group === 'eval' && command === 'calibrate') return evalCalibrate(rest);
  if (group === 'receipt' && command === 'verify') return receiptVerify(rest);
  const run = group ? COMMANDS[group] : undefined;
  if (run) return run(argv.slice(1));
  process.stderr.write(USAGE);
  return argv.length === 0 || group === '--help' || group === 'help' ? 0 : 2;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const code = exitStatusFor(error);
  if (error instanceof FaceprintError) {
    const fields = error.fieldViolations.map((v) => `\n  ${v.field}: ${v.description}`).join('');
    // A message that only sums up the field violations is not printed again above them.
    const summary = error.fieldViolations.map((v) => `${v.field}: ${v.description}`).join('; ');
    process.stderr.write(`faceprint: ${status[error.code]}:${error.message === summary ? '' : ` ${error.message}`}${fields}\n`);
  } else {
    process.stderr.write(`faceprint: ${error instanceof Error ? error.message : String(error)}\n`);
    if (code === 2) process.stderr.write('(faceprint --help lists the commands)\n');
  }
  process.exitCode = code;
}
