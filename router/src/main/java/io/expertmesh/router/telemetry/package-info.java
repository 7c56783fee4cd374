/**
 * The router's OpenTelemetry: request spans ({@code queue}, {@code prefill}, {@code decode} under the Generate
 * call's server span), a {@code step} span around each traced forward pass, and the serving metrics. Everything
 * here observes the engine through its listener seams ({@link io.expertmesh.router.engine.SequenceListener},
 * {@link io.expertmesh.router.engine.StepObserver}, {@link io.expertmesh.router.engine.EngineStatus}); the
 * engine and the compute code know nothing of OpenTelemetry.
 */
package io.expertmesh.router.telemetry;
