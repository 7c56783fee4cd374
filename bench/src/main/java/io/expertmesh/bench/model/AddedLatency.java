package io.expertmesh.bench.model;

import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A network latency for in-process benchmarks: every operation of a RunExperts call towards the worker (start,
 * messages, half-close, cancel) and every event back (headers, messages, close) happens {@code delay} later, in
 * order, on one timer thread, as over a link with that one-way latency (bandwidth unlimited). Other calls pass
 * untouched: a blocking stub waits for its events on its own thread, which a timer thread would not wake. Where network namespaces
 * with netem are not at hand, this shows whether overlapping compute with expert dispatch pays off once a round
 * trip costs something.
 */
final class AddedLatency implements ClientInterceptor, AutoCloseable {
    private final long delayNanos;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("expertmesh-added-latency").daemon().factory());

    AddedLatency(long delayNanos) {
        this.delayNanos = delayNanos;
    }

    /** Runs {@code r} after the delay; equal delays keep their order (the timer breaks ties by submission). */
    private void later(Runnable r) {
        timer.schedule(r, delayNanos, TimeUnit.NANOSECONDS);
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        ClientCall<Q, R> call = next.newCall(method, options);
        if (!method.getFullMethodName().equals(ExpertServiceGrpc.getRunExpertsMethod().getFullMethodName())) {
            return call;
        }
        return new ClientCall<>() {
            @Override
            public void start(Listener<R> listener, Metadata headers) {
                later(() -> call.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(
                        listener) {
                    @Override
                    public void onHeaders(Metadata h) {
                        later(() -> delegate().onHeaders(h));
                    }

                    @Override
                    public void onMessage(R message) {
                        later(() -> delegate().onMessage(message));
                    }

                    @Override
                    public void onClose(Status status, Metadata trailers) {
                        later(() -> delegate().onClose(status, trailers));
                    }

                    @Override
                    public void onReady() {
                        later(() -> delegate().onReady());
                    }
                }, headers));
            }

            @Override
            public void request(int n) {
                later(() -> call.request(n));
            }

            @Override
            public void cancel(String message, Throwable cause) {
                later(() -> call.cancel(message, cause));
            }

            @Override
            public void halfClose() {
                later(call::halfClose);
            }

            @Override
            public void sendMessage(Q message) {
                later(() -> call.sendMessage(message));
            }

            @Override
            public boolean isReady() {
                return call.isReady();
            }
        };
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
