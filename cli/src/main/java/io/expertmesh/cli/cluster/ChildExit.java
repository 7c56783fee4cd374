package io.expertmesh.cli.cluster;

/** A child process that ended: its name and exit code (128 + N when a signal N ended it). */
public record ChildExit(String name, int exitCode) {
}
