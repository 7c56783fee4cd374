package io.expertmesh.cli.cluster;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The command line that runs a main class in a new JVM like this one: the same {@code java} executable, the same
 * JVM flags (module flags, {@code -Xmx}, {@code EXPERTMESH_JAVA_OPTS}) and the same class path. A debugger agent
 * is left out: every child would try to listen on the same port.
 */
public final class JavaCommand {
    private JavaCommand() {
    }

    public static List<String> of(String mainClass, List<String> args) {
        return of(javaExecutable(), ManagementFactory.getRuntimeMXBean().getInputArguments(),
                System.getProperty("java.class.path"), mainClass, args);
    }

    static List<String> of(String java, List<String> jvmArgs, String classPath, String mainClass,
                           List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        for (String a : jvmArgs) {
            if (!a.startsWith("-agentlib:jdwp") && !a.startsWith("-Xrunjdwp")) {
                cmd.add(a);
            }
        }
        cmd.add("-cp");
        cmd.add(classPath);
        cmd.add(mainClass);
        cmd.addAll(args);
        return cmd;
    }

    static String javaExecutable() {
        return ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }
}
