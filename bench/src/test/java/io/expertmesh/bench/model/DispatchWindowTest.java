package io.expertmesh.bench.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class DispatchWindowTest {

    @Test
    void close_reportsOnlyTheCallsSinceOpen() {
        DispatchWindow w = new DispatchWindow();
        w.onRpcTimes(1, "a", 9_000_000, 9_000_000, 9_000_000); // before the window: dropped
        w.onLayer(1, 4, 50_000_000);
        w.open();
        for (int i = 1; i <= 100; i++) {
            w.onRpcTimes(1, "a", 10_000, 1_000_000, i * 1_000L);
        }
        w.onLayer(1, 4, 2_000_000);
        DispatchWindow.Times t = w.close();
        assertEquals(100, t.calls());
        assertEquals(0.010, t.queueP50(), 0.0001);
        assertEquals(1.0, t.computeP99(), 0.001);
        assertEquals(0.050, t.overheadP50(), 0.0001);
        assertEquals(0.099, t.overheadP99(), 0.0001);
        assertEquals(2.0, t.layerP50(), 0.002);
        DispatchWindow.Times empty = w.close();
        assertEquals(0, empty.calls());
        assertEquals(0, empty.overheadP50());
    }
}
