package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class ClientConfigTest {
    @Test
    void defaults_noGenerateDeadlineTenSecondUnary16MiB() {
        ClientConfig c = ClientConfig.defaults();
        assertNull(c.generateDeadline());
        assertEquals(Duration.ofSeconds(10), c.unaryDeadline());
        assertEquals(16 << 20, c.maxInboundMessageSize());
        assertEquals(Duration.ofMinutes(5), c.keepAliveTime());
    }

    @Test
    void constructor_zeroOrNegativeDeadline_throws() {
        assertThrows(IllegalArgumentException.class,
                () -> ClientConfig.defaults().withGenerateDeadline(Duration.ZERO));
        assertThrows(IllegalArgumentException.class,
                () -> ClientConfig.defaults().withUnaryDeadline(Duration.ofMillis(-1)));
    }

    @Test
    void constructor_tinyMessageLimit_throws() {
        assertThrows(IllegalArgumentException.class, () -> ClientConfig.defaults().withMaxInboundMessageSize(10));
    }

    @Test
    void builder_blankTarget_throws() {
        assertThrows(IllegalArgumentException.class, () -> ExpertMeshClient.builder(" "));
    }
}
