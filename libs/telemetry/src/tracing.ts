/**
 * Traces: a Node tracer provider with gRPC and pg instrumentation. Configured through the
 * standard OTEL_* variables: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_TRACES_SAMPLER, and OTEL_TRACES_EXPORTER (`otlp`,
 * `console` or `none`; default `otlp` when an OTLP endpoint is set, else `none`).
 *
 * Without an exporter spans are still created, so that logs carry the trace ids of incoming
 * calls. No instrumentation here records message payloads: images and embeddings never reach a span.
 */
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  NoopSpanProcessor,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

let provider: NodeTracerProvider | undefined;

/** Which trace exporter the environment asks for. */
export function traceExporterFromEnv(env: NodeJS.ProcessEnv = process.env): 'otlp' | 'console' | 'none' {
  const named = env.OTEL_TRACES_EXPORTER?.trim();
  if (named === 'otlp' || named === 'console' || named === 'none') return named;
  if (named) throw new Error(`OTEL_TRACES_EXPORTER: must be otlp, console or none, got "${named}"`);
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : 'none';
}

function spanProcessor(exporter: 'otlp' | 'console' | 'none'): SpanProcessor {
  switch (exporter) {
    case 'otlp':
      return new BatchSpanProcessor(new OTLPTraceExporter());
    case 'console':
      return new SimpleSpanProcessor(new ConsoleSpanExporter());
    case 'none':
      return new NoopSpanProcessor();
  }
}

/**
 * Starts tracing for this process. Must run before `@grpc/grpc-js` and `pg` are loaded (see
 * register.ts): instrumentation patches modules as they load.
 */
export function startTracing(serviceName: string): void {
  if (provider) return;
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    spanProcessors: [spanProcessor(traceExporterFromEnv())],
  });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [new GrpcInstrumentation(), new PgInstrumentation({ enhancedDatabaseReporting: false })],
  });
}

/** Flushes and stops tracing; call after the server has drained. */
export async function shutdownTracing(): Promise<void> {
  const stopping = provider;
  provider = undefined;
  await stopping?.shutdown();
}
