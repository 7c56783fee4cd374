package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.util.List;
import org.junit.jupiter.api.Test;

class RouterTargetsTest {
    @Test
    void oneTarget_isPassedToGrpcUnchanged() {
        assertEquals("localhost:50051", RouterTargets.of(List.of("localhost:50051")).channelTarget());
        assertEquals("dns:///routers.example:50051",
                RouterTargets.of(List.of(" dns:///routers.example:50051 ")).channelTarget());
        assertEquals("router", RouterTargets.of(List.of("router")).channelTarget());
    }

    @Test
    void severalTargets_becomeOneStaticRoutersTarget_thatParsesBack() {
        RouterTargets t = RouterTargets.of(List.of("a.example:1", "[::1]:2", "127.0.0.1:3"));
        assertEquals("a.example:1,[::1]:2,127.0.0.1:3", t.toString());
        URI uri = URI.create(t.channelTarget());
        assertEquals(StaticRoutersNameResolverProvider.SCHEME, uri.getScheme());
        assertEquals("/a.example:1,[::1]:2,127.0.0.1:3", uri.getPath());
    }

    @Test
    void routerAddress_parsesHostAndPort() {
        assertEquals(new RouterAddress("::1", 2), RouterAddress.parse("[::1]:2"));
        assertEquals("[::1]:2", RouterAddress.parse("[::1]:2").authority());
        assertEquals(new RouterAddress("h", 65535), RouterAddress.parse(" h:65535 "));
    }

    @Test
    void badInput_oneLineErrors() {
        assertEquals("no target given; expected HOST:PORT (or several, comma-separated)", error(List.of()));
        assertEquals("the target is empty; expected host:port", error(List.of("a:1", " ")));
        assertEquals("bad router address 'b': expected HOST:PORT (several routers are given as HOST:PORT each; "
                + "a URI target such as dns:///NAME:PORT must be given alone)", error(List.of("a:1", "b")));
        assertTrue(error(List.of("a:1", "dns:///b:2")).startsWith("bad router address 'dns:///b:2'"));
        assertEquals("bad router address 'b:0': the port must be in 1..65535", error(List.of("a:1", "b:0")));
        assertEquals("bad router address 'b:70000': the port must be in 1..65535", error(List.of("a:1", "b:70000")));
        assertEquals("bad router address ':5': the host is empty", error(List.of("a:1", ":5")));
        assertEquals("bad router address '[::1]': expected [IPV6]:PORT", error(List.of("a:1", "[::1]")));
        assertEquals("router a:1 is given twice", error(List.of("a:1", "b:2", "a:1")));
    }

    private static String error(List<String> targets) {
        return assertThrows(IllegalArgumentException.class, () -> RouterTargets.of(targets)).getMessage();
    }
}
