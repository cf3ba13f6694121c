/**
 * `faceprint receipt verify`: checks an erasure receipt or a 1:1 decision record offline against
 * the matcher's Ed25519 public key. The file is the ErasureReceipt or DecisionRecord message in
 * protobuf JSON, or the output of `faceprint verify --json` (its `decision_record`); the public
 * keys are a PEM file of one key or several (`faceprint receipt keys` writes the matcher's active
 * and retired keys; the key a document names is picked by its id), by default the local mesh's
 * `.pub.pem` beside its signing key and the retired keys beside it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { parsePublicKeys, RETIRED_SIGNING_KEYS_DIR, verifyDecisionRecord, verifyErasureReceipt, type DecisionRecordVerification } from '@faceprint/contracts';
import { DecisionRecordSchema, ErasureReceiptSchema, type DecisionRecord, type ErasureReceipt } from '@faceprint/contracts/common';
import { RECEIPT_VERIFY_USAGE } from '../usage.js';

/** The local mesh's receipt-signing public key (the matcher's default key directory, beside its gallery). */
export const LOCAL_PUBLIC_KEY = join(fileURLToPath(new URL('../../../../', import.meta.url)), 'data', 'gallery-keys', 'receipt-signing.pub.pem');

/** The local mesh's public keys: the active one and those retired beside it by `faceprint receipt rotate-key`. */
async function localPublicKeys(): Promise<string> {
  const retiredDir = join(dirname(LOCAL_PUBLIC_KEY), RETIRED_SIGNING_KEYS_DIR);
  const retired = (await readdir(retiredDir).catch(() => [])).filter((f) => f.endsWith('.pem'));
  const texts = await Promise.all([LOCAL_PUBLIC_KEY, ...retired.map((f) => join(retiredDir, f))].map((f) => readFile(f, 'utf8')));
  return texts.join('\n');
}

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
  const signed = readSignedDocument(text, receiptFile);
  const publicKeyFile = values['public-key'] ?? LOCAL_PUBLIC_KEY;
  const pem = await (values['public-key'] ? readFile(publicKeyFile, 'utf8') : localPublicKeys()).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot read the public key ${publicKeyFile} (${error.code ?? error.message}); name the matcher's keys with --public-key (faceprint receipt keys fetches them)`, { cause: error });
  });
  const publicKeys = parsePublicKeys(pem);
  if (signed.kind === 'decision') return reportDecision(verifyDecisionRecord(signed.record, publicKeys), values.json);
  const outcome = verifyErasureReceipt(signed.receipt, publicKeys);
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

/**
 * What the file holds: an erasure receipt (protobuf JSON), a decision record (protobuf JSON), or
 * the output of `faceprint verify --json`, whose `decision_record` is one.
 */
function readSignedDocument(text: string, file: string): { kind: 'erasure'; receipt: ErasureReceipt } | { kind: 'decision'; record: DecisionRecord } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const object = (json ?? {}) as Record<string, unknown>;
  const recordJson = object.decision_record ?? (object.recordId !== undefined ? object : undefined);
  try {
    if (recordJson !== undefined) return { kind: 'decision', record: fromJson(DecisionRecordSchema, recordJson as JsonValue) };
    return { kind: 'erasure', receipt: fromJson(ErasureReceiptSchema, object as JsonValue) };
  } catch (error) {
    throw new Error(`${file} is neither an erasure receipt nor a decision record in protobuf JSON: ${(error as Error).message}`, { cause: error });
  }
}

function reportDecision(outcome: DecisionRecordVerification, json: boolean): number {
  if (json) {
    process.stdout.write(`${JSON.stringify(outcome.valid ? { valid: true, decision_record: outcome.payload } : { valid: false, problems: outcome.problems })}\n`);
  } else if (outcome.valid) {
    const p = outcome.payload;
    const models = [p.models.detector, p.models.embedder].filter((m) => m !== undefined).map((m) => `${m.name}@${m.version} (sha256 ${m.sha256.slice(0, 12)})`).join(', ');
    process.stdout.write(
      `valid: ${p.decision} ${p.decision_of === 'compare' ? 'comparing two images' : `for subject ${p.subject_pseudonym ?? `"${(p as { subject_id?: string }).subject_id}"`}`} of tenant "${p.tenant_id}" at ${p.decided_at} (request ${p.request_id || 'none'})\n` +
        `  score ${p.score.toFixed(4)}, threshold ${p.threshold.toFixed(4)} over ${p.templates_compared} template(s), false-match rate ${p.target_far} (95% bound ${p.far_upper_95.toExponential(2)})\n` +
        `  probe images: ${p.probe_image_sha256.join(', ') || 'none given'}; models: ${models}\n  signed by ${p.signing_key_id}\n`,
    );
  } else {
    process.stdout.write(`NOT valid:\n${outcome.problems.map((problem) => `  - ${problem}`).join('\n')}\n`);
  }
  return outcome.valid ? 0 : 1;
}
