/**
 * The compliance commands: `erase` (prints the signed receipt; with --json, exactly the receipt
 * `faceprint receipt verify` reads) and `export` (prints the subject's JSON document).
 */
import { toJson } from '@bufbuild/protobuf';
import { ErasureReason, ErasureReceiptSchema } from '@faceprint/contracts/common';
import { connect, EXIT, GLOBAL_OPTIONS, parseFlags, UsageError } from './connection.js';

const REASONS: Record<string, ErasureReason> = {
  'subject-request': ErasureReason.SUBJECT_REQUEST,
  'consent-withdrawn': ErasureReason.CONSENT_WITHDRAWN,
  operator: ErasureReason.OPERATOR,
};

export async function erase(argv: string[]): Promise<number> {
  const { values } = parseFlags({ args: argv, options: { ...GLOBAL_OPTIONS, subject: { type: 'string' }, 'request-ref': { type: 'string' }, reason: { type: 'string' }, note: { type: 'string' } } });
  // Never "all": erasure names its subject and the request it answers.
  if (!values.subject || !values['request-ref']) throw new UsageError('erase needs --subject ID and --request-ref REF (the ticket or case it answers)');
  const reason = REASONS[values.reason ?? 'subject-request'];
  if (reason === undefined) throw new UsageError(`--reason must be one of ${Object.keys(REASONS).join(', ')}, got "${values.reason}"`);
  const client = connect(values, 'compliance');
  try {
    const { receipt, replayed } = await client.erase(values.subject, values['request-ref'], { reason, note: values.note });
    const json = toJson(ErasureReceiptSchema, receipt!);
    const counts = receipt!.counts.map((c) => `${c.kind} ${c.count}`).join(', ');
    const text = `${replayed ? 'already erased; the first receipt' : 'erased'}: subject "${receipt!.subjectId}" at ${new Date(Number(receipt!.erasedAt!.seconds) * 1000).toISOString()}\n  ${counts}\n  receipt ${receipt!.receiptId}, signed by ${receipt!.signingKeyId}\n  (--json prints the receipt for \`faceprint receipt verify\`)`;
    process.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
    return EXIT.ok;
  } finally {
    client.close();
  }
}

export async function exportSubject(argv: string[]): Promise<number> {
  const { values } = parseFlags({ args: argv, options: { ...GLOBAL_OPTIONS, subject: { type: 'string' }, 'request-ref': { type: 'string' }, vectors: { type: 'boolean', default: false } } });
  if (!values.subject) throw new UsageError('export needs --subject ID');
  const client = connect(values, 'compliance');
  try {
    const document = await client.export(values.subject, values['request-ref'] ?? `faceprint-cli:${new Date().toISOString()}`, { includeVectors: values.vectors });
    process.stdout.write(values.json ? `${JSON.stringify(document)}\n` : `${JSON.stringify(document, null, 2)}\n`);
    return EXIT.ok;
  } finally {
    client.close();
  }
}
