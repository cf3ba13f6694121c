/**
 * Structured JSON logs (pino) that carry the active trace and span ids. Known payload fields are
 * redacted as a second line of defence: handlers must never log requests, images or embeddings.
 */
import { trace } from '@opentelemetry/api';
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Field paths that could hold biometric data; their values are replaced in every log line. */
const REDACTED_PATHS = [
  'request',
  'response',
  'image',
  'images',
  'content',
  'pixels',
  'vector',
  'embedding',
  'embeddings',
  'probe',
  '*.request',
  '*.response',
  '*.image',
  '*.images',
  '*.content',
  '*.pixels',
  '*.vector',
  '*.embedding',
  '*.embeddings',
  '*.probe',
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The service name, written as `service` on every line. */
  readonly service: string;
  /** The minimum level. Default: `info`. */
  readonly level?: LevelWithSilent;
  /** Where lines go. Default: standard output, written synchronously so no line is lost at exit. */
  readonly destination?: NodeJS.WritableStream;
}

/** Creates the process logger: JSON lines with `service`, `trace_id` and `span_id`. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
