/**
 * Continuous batching after vLLM v1's {@code sched/scheduler.py}: one token budget per step shared by decodes
 * and (chunked) prefills, FCFS admission, and recompute preemption when KV blocks run out.
 *
 * <p>Single-threaded by design: the engine's step thread calls every method here and in
 * {@link io.expertmesh.router.kv}; there are no locks.
 */
package io.expertmesh.router.scheduler;
