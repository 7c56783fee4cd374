package io.expertmesh.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * deploy/docker/Dockerfile, read as instructions (no Docker daemon here to build it): multi-stage, a jlink
 * runtime with the Vector API module, a non-root user, the CLI as the exec-form ENTRYPOINT with the same JVM
 * flags as bin/expertmesh, and COPY sources that exist.
 */
class DockerfileTest {
    private static final Path DOCKERFILE = DeployFiles.ROOT.resolve("docker/Dockerfile");
    private static final Path REPO = DeployFiles.ROOT.getParent();

    /** The instructions, continuation lines joined, comments dropped. */
    private static List<String> instructions() throws IOException {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : Files.readAllLines(DOCKERFILE)) {
            String t = line.strip();
            if (cur.isEmpty() && (t.isEmpty() || t.startsWith("#"))) {
                continue;
            }
            if (t.endsWith("\\")) {
                cur.append(t, 0, t.length() - 1).append(' ');
            } else {
                cur.append(t);
                out.add(cur.toString());
                cur.setLength(0);
            }
        }
        return out;
    }

    @Test
    void dockerfile_multiStage_jlinkWithVectorModule_nonRootUser() throws IOException {
        List<String> ins = instructions();
        List<String> froms = ins.stream().filter(i -> i.startsWith("FROM ")).toList();
        assertTrue(froms.size() >= 3, "build, jre and runtime stages: " + froms);
        assertTrue(froms.getFirst().contains("maven") && froms.getFirst().contains("25"), froms.getFirst());
        String jlink = ins.stream().filter(i -> i.contains("jlink ")).findFirst().orElseThrow();
        Matcher m = Pattern.compile("--add-modules\\s+(\\S+)").matcher(jlink);
        assertTrue(m.find(), jlink);
        List<String> modules = List.of(m.group(1).split(","));
        assertTrue(modules.containsAll(List.of("jdk.incubator.vector", "jdk.unsupported", "java.se")), modules.toString());
        int lastFrom = ins.lastIndexOf(froms.getLast());
        List<String> users = ins.subList(lastFrom, ins.size()).stream().filter(i -> i.startsWith("USER ")).toList();
        assertEquals(1, users.size(), "the runtime stage sets a user");
        String user = users.getFirst().substring(5).strip().split(":")[0];
        assertFalse(user.equals("0") || user.equals("root"), "non-root: " + user);
    }

    @Test
    void entrypoint_execFormRunningTheCli_withTheLaunchersJvmFlags() throws IOException {
        String entry = instructions().stream().filter(i -> i.startsWith("ENTRYPOINT ")).findFirst().orElseThrow();
        List<String> args = new ArrayList<>();
        new ObjectMapper().readTree(entry.substring("ENTRYPOINT ".length())).forEach(n -> args.add(n.asText()));
        assertEquals("java", args.getFirst());
        assertEquals("io.expertmesh.cli.Main", args.getLast());
        List<String> imageFlags = args.subList(1, args.indexOf("-cp"));
        assertEquals(launcherFlags(), imageFlags, "the image runs the JVM as bin/expertmesh does");
    }

    /** The JVM flags of bin/expertmesh's exec line (before EXPERTMESH_JAVA_OPTS). */
    private static List<String> launcherFlags() throws IOException {
        String script = Files.readString(REPO.resolve("bin/expertmesh"));
        int start = script.indexOf("exec java ");
        int end = script.indexOf("${EXPERTMESH_JAVA_OPTS", start);
        assertTrue(start >= 0 && end > start, "bin/expertmesh has its exec java line");
        List<String> flags = new ArrayList<>();
        for (String t : script.substring(start + "exec java ".length(), end).replace("\\\n", " ").split("\\s+")) {
            if (!t.isBlank()) {
                flags.add(t);
            }
        }
        return flags;
    }

    @Test
    void copySources_existInTheRepository() throws IOException {
        for (String i : instructions()) {
            if (i.startsWith("COPY ") && !i.contains("--from=")) {
                String[] parts = i.substring(5).strip().split("\\s+");
                for (int k = 0; k < parts.length - 1; k++) {
                    assertTrue(Files.exists(REPO.resolve(parts[k])), "COPY source " + parts[k] + " exists");
                }
            }
        }
    }

    /**
     * The build stage runs {@code mvn -pl cli -am} over the root pom, which names every module: each module the
     * reactor needs must have its pom and main sources copied, or the image build fails (no daemon here to catch
     * it).
     */
    @Test
    void buildStage_copiesEveryModuleOfTheRootPom() throws IOException {
        String rootPom = Files.readString(REPO.resolve("pom.xml"));
        Matcher m = Pattern.compile("<module>([^<]+)</module>").matcher(rootPom);
        List<String> copied = instructions().stream().filter(i -> i.startsWith("COPY ") && !i.contains("--from="))
                .map(i -> i.substring(5).strip().split("\\s+")[0]).toList();
        while (m.find()) {
            String module = m.group(1);
            assertTrue(copied.contains(module + "/pom.xml") || copied.contains(module),
                    "the Dockerfile copies " + module + "/pom.xml");
            if (!module.equals("deploy")) {
                assertTrue(copied.contains(module) || copied.contains(module + "/src/main"),
                        "the Dockerfile copies " + module + "'s main sources");
            }
        }
    }

    /**
     * The gpu target: a stage from the CUDA toolkit image runs cuda/build-ptx.sh and fails without the kernel index;
     * the GPU image takes the build's jars with that PTX in the cuda jar; the default (last) target stays the CPU
     * image, which takes none of it.
     */
    @Test
    void gpuTarget_compilesThePtxIntoTheCudaJar_defaultTargetStaysCpu() throws IOException {
        List<String> ins = instructions();
        String ptxFrom = ins.stream().filter(i -> i.startsWith("FROM ") && i.endsWith(" AS ptx")).findFirst()
                .orElseThrow(() -> new AssertionError("no ptx stage"));
        assertTrue(ptxFrom.contains("nvidia/cuda") && ptxFrom.contains("devel"), "nvcc comes from: " + ptxFrom);
        int ptx = ins.indexOf(ptxFrom);
        String build = ins.subList(ptx, ins.size()).stream().filter(i -> i.startsWith("RUN ")).findFirst().orElseThrow();
        assertTrue(build.contains("build-ptx.sh") && build.contains("io/expertmesh/cuda/ptx")
                && build.contains("index.txt"), build);
        assertTrue(ins.contains("FROM build AS build-gpu"), "the GPU jars are the build's");
        assertTrue(ins.stream().anyMatch(i -> i.startsWith("COPY --from=ptx ")));
        assertTrue(ins.stream().anyMatch(i -> i.startsWith("RUN jar uf ") && i.contains("cuda-")),
                "the PTX goes into the cuda jar");
        int gpu = ins.indexOf(ins.stream().filter(i -> i.startsWith("FROM ") && i.endsWith(" AS gpu")).findFirst()
                .orElseThrow(() -> new AssertionError("no gpu target")));
        List<String> froms = ins.stream().filter(i -> i.startsWith("FROM ")).toList();
        int next = ins.indexOf(froms.get(froms.indexOf(ins.get(gpu)) + 1));
        assertTrue(ins.subList(gpu, next).contains("COPY --from=build-gpu /out/ /opt/expertmesh/"));
        assertTrue(ins.subList(gpu, next).stream().anyMatch(i -> i.startsWith("USER 10001")));
        List<String> last = ins.subList(ins.lastIndexOf(froms.getLast()), ins.size());
        assertTrue(last.contains("COPY --from=build /out/ /opt/expertmesh/"), "the default target is the CPU image");
    }
}
