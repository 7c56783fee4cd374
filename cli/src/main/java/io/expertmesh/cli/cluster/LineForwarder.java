package io.expertmesh.cli.cluster;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Copies a child's output to a shared sink line by line, each line prefixed with {@code [name] }, so the lines of
 * several processes interleave whole and say where they come from.
 */
public final class LineForwarder implements Runnable {
    private final String prefix;
    private final InputStream in;
    private final Consumer<String> sink;

    public LineForwarder(String name, InputStream in, Consumer<String> sink) {
        this.prefix = "[" + name + "] ";
        this.in = in;
        this.sink = sink;
    }

    @Override
    public void run() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                sink.accept(prefix + line);
            }
        } catch (IOException closed) {
            // the process went away and took its pipe with it: nothing more to forward
        }
    }
}
