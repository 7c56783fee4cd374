package io.expertmesh.cli.cluster;

/**
 * A tiny child process for the supervisor tests, run as {@code java -cp <test classpath> TestChild MODE ...}:
 * <ul>
 *   <li>{@code lines N}: prints {@code line 0} … {@code line N-1} and exits 0</li>
 *   <li>{@code exit CODE MILLIS}: prints {@code up}, sleeps, exits with CODE</li>
 *   <li>{@code serve TERM_MILLIS}: prints {@code up}; on SIGTERM prints {@code term}, takes TERM_MILLIS, prints
 *       {@code bye} and exits</li>
 *   <li>{@code stuck}: prints {@code up}; on SIGTERM prints {@code term} and never finishes exiting</li>
 *   <li>{@code supervised}: {@link SupervisedChild#installIfSupervised}, prints {@code up}, sleeps</li>
 *   <li>{@code crash-once FILE}: the first run (FILE absent) creates FILE, prints {@code up} and exits 3; later runs
 *       print {@code up again} and serve as {@code serve 0}</li>
 * </ul>
 */
public final class TestChild {
    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "lines" -> {
                for (int i = 0; i < Integer.parseInt(args[1]); i++) {
                    System.out.println("line " + i);
                }
                System.err.println("done on stderr");
            }
            case "exit" -> {
                System.out.println("up");
                System.out.flush();
                Thread.sleep(Long.parseLong(args[2]));
                System.out.println("exiting with " + args[1]);
                System.exit(Integer.parseInt(args[1]));
            }
            case "serve" -> {
                long termMillis = Long.parseLong(args[1]);
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    System.out.println("term");
                    System.out.flush();
                    sleep(termMillis);
                    System.out.println("bye");
                    System.out.flush();
                }));
                System.out.println("up");
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
            case "stuck" -> {
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    System.out.println("term");
                    System.out.flush();
                    sleep(Long.MAX_VALUE);
                }));
                System.out.println("up");
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
            case "supervised" -> {
                SupervisedChild.installIfSupervised(System.getenv());
                System.out.println("up");
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
            case "crash-once" -> {
                java.nio.file.Path marker = java.nio.file.Path.of(args[1]);
                if (!java.nio.file.Files.exists(marker)) {
                    java.nio.file.Files.createFile(marker);
                    System.out.println("up");
                    System.out.flush();
                    System.exit(3);
                }
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    System.out.println("term");
                    System.out.flush();
                }));
                System.out.println("up again");
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
