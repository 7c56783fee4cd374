package io.expertmesh.cli.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class RestartPolicyTest {
    @Test
    void backoff_crashesInTheWindow_doublesFromTheInitialWaitUpToTheCap() {
        RestartPolicy p = RestartPolicy.of(10, Duration.ofSeconds(120));
        assertEquals(Duration.ofSeconds(1), p.backoff(1));
        assertEquals(Duration.ofSeconds(2), p.backoff(2));
        assertEquals(Duration.ofSeconds(16), p.backoff(5));
        assertEquals(Duration.ofSeconds(30), p.backoff(6));
        assertEquals(Duration.ofSeconds(30), p.backoff(1_000), "no overflow past the cap");
    }

    @Test
    void restarts_upToMaxRestarts_thenGivesUp() {
        RestartPolicy p = RestartPolicy.of(5, Duration.ofSeconds(120));
        assertTrue(p.restarts(5));
        assertFalse(p.restarts(6));
        assertFalse(RestartPolicy.never().restarts(1), "never: the first crash is given up on");
    }

    @Test
    void crashWindow_crashesOlderThanTheWindow_forgotten() {
        CrashWindow w = new CrashWindow(Duration.ofSeconds(60));
        long s = 1_000_000_000L;
        assertEquals(1, w.record(0));
        assertEquals(2, w.record(10 * s));
        assertEquals(3, w.record(59 * s));
        assertEquals(3, w.record(65 * s), "the crash at 0 s is out of the window at 65 s");
        assertEquals(1, w.record(200 * s), "a child that ran well starts again from one crash");
    }

    @Test
    void constructor_badValues_rejected() {
        assertThrows(IllegalArgumentException.class, () -> RestartPolicy.of(-1, Duration.ofSeconds(1)));
        assertThrows(IllegalArgumentException.class,
                () -> new RestartPolicy(1, Duration.ofSeconds(1), Duration.ofSeconds(2), Duration.ofSeconds(1)));
    }
}
