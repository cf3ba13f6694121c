/**
 * `faceprint`: the command line. The gateway commands (up, enroll, verify, compare, identify,
 * detect, erase, export, keys), the trainer's (models), the offline receipt verifier, and the
 * evaluation tools. Each command's code is loaded only when it runs, so that the command starts
 * quickly (`--help` loads none).
 */
import { USAGE } from './usage.js';

type Command = (argv: string[]) => Promise<number>;

const face = () => import('./gateway/face-commands.js');
const compliance = () => import('./gateway/compliance-commands.js');

/** `faceprint <group> ...`: the argument list after the group. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  enroll: async () => (await face()).enroll,
  verify: async () => (await face()).verify,
  compare: async () => (await face()).compare,
  identify: async () => (await face()).identify,
  detect: async () => (await face()).detect,
  gallery: async () => (await face()).gallery,
  erase: async () => (await compliance()).erase,
  export: async () => (await compliance()).exportSubject,
  keys: async () => (await import('./gateway/key-commands.js')).keys,
  models: async () => (await import('./models/model-commands.js')).models,
};

/** `faceprint <group> <command> ...`: the argument list after the command. */
const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  'eval verify': async () => (await import('./eval/verify.js')).evalVerify,
  'eval detect': async () => (await import('./eval/detect.js')).evalDetect,
  'eval calibrate': async () => (await import('./eval/calibrate.js')).evalCalibrate,
  'eval multi-sample': async () => (await import('./eval/multi-sample.js')).evalMultiSample,
  'eval pad': async () => (await import('./eval/pad.js')).evalPad,
  'receipt verify': async () => (await import('./receipt/verify.js')).receiptVerify,
  'receipt keys': async () => (await import('./receipt/keys.js')).receiptKeys,
  'receipt rotate-key': async () => (await import('./receipt/keys.js')).rotateKey,
};

async function main(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  if (group === 'up') {
    // The local mesh runs in this process until Ctrl-C (it sets the exit status itself).
    await import('@faceprint/mesh/main');
    return new Promise<number>(() => {});
  }
  const pair = `${group} ${command}`;
  if (Object.hasOwn(SUBCOMMANDS, pair)) return (await SUBCOMMANDS[pair]!())(rest);
  if (group && Object.hasOwn(COMMANDS, group)) return (await COMMANDS[group]!())(argv.slice(1));
  process.stderr.write(USAGE);
  return argv.length === 0 || group === '--help' || group === 'help' ? 0 : 2;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const { reportFailure } = await import('./gateway/connection.js');
  process.exitCode = reportFailure(error);
}
