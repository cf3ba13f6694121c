/**
 * A minimal OTLP/HTTP (JSON) trace receiver on loopback, standing in for an OpenTelemetry
 * Collector so that tests can see the spans services really export.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One exported span, flattened with its service name. */
export interface ReceivedSpan {
  /** `service.name` of the exporting process. */
  readonly service: string;
  /** The span name. */
  readonly name: string;
  /** OTLP span kind: 2 = server, 3 = client. */
  readonly kind: number;
  /** Hex trace id. */
  readonly traceId: string;
  /** Hex span id. */
  readonly spanId: string;
  /** Hex parent span id, or '' for a root span. */
  readonly parentSpanId: string;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** The endpoint to put in OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  /** Every span received so far. */
  readonly spans: ReceivedSpan[];
  /** Every request body received, raw (to check that nothing sensitive was exported). */
  readonly bodies: string[];
  /** Stops the receiver. */
  close(): Promise<void>;
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: { name: string; kind: number; traceId: string; spanId: string; parentSpanId?: string }[] }[];
  }[];
}

/** Starts a receiver on 127.0.0.1 with a free port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      bodies.push(body);
      if (request.url === '/v1/traces') {
        const payload = JSON.parse(body) as OtlpJson;
        for (const resourceSpans of payload.resourceSpans ?? []) {
          const service = resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              spans.push({ service, name: span.name, kind: span.kind, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '' });
            }
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
