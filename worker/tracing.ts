/**
 * OpenTelemetry tracing through Temporal's own interceptors (@temporalio/interceptors-opentelemetry): client, workflow
 * and activity spans, exported over OTLP/HTTP. Optional: the packages are optional peer dependencies, loaded only
 * when BATCHKEEPER_OTLP_TRACES_URL is set. Spans carry names and ids only (workflow and activity types, workflow
 * ids), never arguments or results.
 */
import type { ClientPlugin } from '@temporalio/client';
import type { WorkerPlugin } from '@temporalio/worker';

export interface Tracing {
  /** For Worker.create (and the bundler: its workflow interceptors are compiled into the workflow code). */
  plugin: WorkerPlugin & ClientPlugin;
  /** Sends the spans still buffered. */
  shutdown(): Promise<void>;
}

const PACKAGES = [
  '@temporalio/interceptors-opentelemetry', '@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/resources',
  '@opentelemetry/context-async-hooks',
];

export async function startTracing(url: string, serviceName = 'batchkeeper-worker'): Promise<Tracing> {
  let modules;
  try {
    modules = await Promise.all([
      import('@temporalio/interceptors-opentelemetry'), import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/resources'), import('@opentelemetry/context-async-hooks'),
    ]);
  } catch (error) {
    throw new Error(`BATCHKEEPER_OTLP_TRACES_URL is set, but the tracing packages are not installed (${(error as Error).message.split('\n')[0]}): npm install ${PACKAGES.join(' ')}`);
  }
  const [{ OpenTelemetryPlugin }, { BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { Resource }, { AsyncLocalStorageContextManager }] = modules;
  const resource = new Resource({ 'service.name': serviceName });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1000 });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // The context manager carries the active span across awaits: an activity's span becomes the parent of the spans
  // made inside it (the provider SDKs' own HTTP spans), and the workflow's StartActivity span the parent of it.
  provider.register({ contextManager: new AsyncLocalStorageContextManager().enable() });
  const plugin = new OpenTelemetryPlugin({ resource, spanProcessor, tracer: provider.getTracer('batchkeeper') });
  return { plugin, shutdown: () => provider.shutdown() };
}
