/**
 * Metrics: an OpenTelemetry meter provider exported on a Prometheus `/metrics` endpoint. Metric
 * attributes are low-cardinality names and status codes only, never ids, images or embeddings.
 */
import { metrics, type Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

let provider: MeterProvider | undefined;

/** Options of {@link startMetrics}. */
export interface MetricsOptions {
  /** The service name, a resource attribute of every metric. */
  readonly serviceName: string;
  /** The port of the `/metrics` endpoint; 0 turns the endpoint off (metrics are still recorded). */
  readonly port: number;
  /** The host to listen on. Default: `127.0.0.1` (containers set `0.0.0.0`, so Prometheus can scrape the pod). */
  readonly host?: string;
}

/** Starts the process meter provider and, unless the port is 0, the Prometheus endpoint. */
export async function startMetrics(options: MetricsOptions): Promise<void> {
  if (provider) return;
  const readers = [];
  if (options.port !== 0) {
    const exporter = new PrometheusExporter({ port: options.port, host: options.host ?? '127.0.0.1', preventServerStart: true });
    await exporter.startServer();
    readers.push(exporter);
  }
  provider = new MeterProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    readers,
  });
  metrics.setGlobalMeterProvider(provider);
}

/** The faceprint meter (a no-op meter before {@link startMetrics}). */
export function faceprintMeter(): Meter {
  return metrics.getMeter('faceprint');
}

/** Stops the meter provider and its endpoint. */
export async function shutdownMetrics(): Promise<void> {
  const stopping = provider;
  provider = undefined;
  await stopping?.shutdown();
}
