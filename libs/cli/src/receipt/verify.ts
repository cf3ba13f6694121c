/**
 * `faceprint receipt verify`: checks an erasure receipt offline against the matcher's Ed25519
 * public key. The receipt is the ErasureReceipt message in protobuf JSON (what `faceprint erase`
 * and the gateway return); the public key is the `.pub.pem` beside the matcher's signing key,
 * by default the local mesh's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fromJsonString } from '@bufbuild/protobuf';
import { verifyErasureReceipt } from '@faceprint/contracts';
import { ErasureReceiptSchema, type ErasureReceipt } from '@faceprint/contracts/common';
import { RECEIPT_VERIFY_USAGE } from '../usage.js';

/** The local mesh's receipt-signing public key (the matcher's default key directory, beside its gallery). */
const LOCAL_PUBLIC_KEY = join(fileURLToPath(new URL('../../../../', import.meta.url)), 'data', 'gallery-keys', 'receipt-signing.pub.pem');

/** Runs the command; returns the process exit code. */
export async function receiptVerify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'public-key': { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const [receiptFile] = positionals;
  if (!receiptFile || positionals.length > 1) {
    process.stderr.write(`${RECEIPT_VERIFY_USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = await readFile(receiptFile, 'utf8');
  } catch (error) {
    // No file to check is a usage error; a file that is not a valid receipt is "not valid" (1).
    process.stderr.write(`faceprint: cannot read ${receiptFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`);
    return 2;
  }
  let receipt: ErasureReceipt;
  try {
    receipt = fromJsonString(ErasureReceiptSchema, text);
  } catch (error) {
    throw new Error(`${receiptFile} is not an erasure receipt in protobuf JSON: ${(error as Error).message}`, { cause: error });
  }
  const publicKeyFile = values['public-key'] ?? LOCAL_PUBLIC_KEY;
  const publicKey = await readFile(publicKeyFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot read the public key ${publicKeyFile} (${error.code ?? error.message}); name the matcher's key with --public-key`, { cause: error });
  });
  const outcome = verifyErasureReceipt(receipt, publicKey);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(outcome.valid ? { valid: true, receipt: outcome.payload } : { valid: false, problems: outcome.problems })}\n`);
  } else if (outcome.valid) {
    const p = outcome.payload;
    const counts = Object.entries(p.counts).map(([kind, count]) => `${kind} ${count}`).join(', ');
    process.stdout.write(`valid: subject "${p.subject_id}" of tenant "${p.tenant_id}" erased at ${p.erased_at} (${p.reason}, request ${p.request_ref})\n  erased: ${counts}\n  signed by ${p.signing_key_id}\n`);
  } else {
    process.stdout.write(`NOT valid:\n${outcome.problems.map((problem) => `  - ${problem}`).join('\n')}\n`);
  }
  return outcome.valid ? 0 : 1;
}
