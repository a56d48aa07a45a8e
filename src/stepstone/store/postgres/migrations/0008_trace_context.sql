-- stepstone PostgreSQL schema: a run's trace context. The W3C trace context (`traceparent`,
-- `tracestate`) active where the run was started, as a JSON object, so that the worker that
-- executes it (stepstone[otel]) continues that trace; NULL when nothing was traced.

ALTER TABLE stepstone.runs ADD COLUMN trace_context text;
