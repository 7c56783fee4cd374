package io.expertmesh.cuda;

import static io.expertmesh.cuda.KernelParam.F32;
import static io.expertmesh.cuda.KernelParam.I32;
import static io.expertmesh.cuda.KernelParam.PTR;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

/**
 * The argument block a launch hands {@code cuLaunchKernel} (no device needed: it is host memory): each value in
 * its own 8-byte slot, the address array pointing at the slots, arguments checked against the kernel's declared
 * kinds as they are added.
 */
class KernelArgsTest {
    private static final KernelSpec K = KernelSpec.of("k", PTR, I32, F32, PTR, I32);

    @Test
    void values_inTheirSlots_addressArrayPointsAtThem() {
        KernelArgs a = new KernelArgs();
        a.reset(K).ptr(0x7f00_1234_5600L).i32(-7).f32(1.5f).ptr(0x10L).i32(Integer.MAX_VALUE);
        assertSame(K, a.finish());
        MemorySegment v = a.values();
        assertEquals(0x7f00_1234_5600L, v.get(ValueLayout.JAVA_LONG, 0));
        assertEquals(-7, v.get(ValueLayout.JAVA_INT, 8));
        assertEquals(1.5f, v.get(ValueLayout.JAVA_FLOAT, 16));
        assertEquals(0x10L, v.get(ValueLayout.JAVA_LONG, 24));
        assertEquals(Integer.MAX_VALUE, v.get(ValueLayout.JAVA_INT, 32));
        for (int i = 0; i < KernelArgs.MAX_PARAMS; i++) {
            assertEquals(v.address() + 8L * i, a.slots().get(ValueLayout.JAVA_LONG, 8L * i), "slot " + i);
        }
        // The buffer JCuda is given is the address array itself, in native order, unmoved.
        var buf = a.slotsBuffer();
        assertTrue(buf.isDirect());
        assertEquals(KernelArgs.MAX_PARAMS * 8, buf.capacity());
        assertEquals(v.address(), buf.order(ByteOrder.nativeOrder()).getLong(0));
        assertEquals(a.slots().address(), MemorySegment.ofBuffer(buf).address());
    }

    @Test
    void reused_nextLaunchOverwrites_andAnAbandonedOneIsDropped() {
        KernelArgs a = new KernelArgs();
        a.reset(K).ptr(1L).i32(2);   // abandoned half-way (an argument expression threw)
        KernelSpec two = KernelSpec.of("two", I32, I32);
        a.reset(two).i32(5).i32(6);
        assertSame(two, a.finish());
        assertEquals(5, a.values().get(ValueLayout.JAVA_INT, 0));
        assertEquals(6, a.values().get(ValueLayout.JAVA_INT, 8));
        assertThrows(IllegalStateException.class, a::finish, "a finished launch cannot be issued twice");
    }

    @Test
    void wrongKindCountOrOrder_namesKernelAndArgument() {
        KernelArgs a = new KernelArgs();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.reset(K).ptr(1L).f32(2f));
        assertEquals("k argument 1 is F32; the kernel's parameter 1 is I32", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> a.reset(K).i32(1));
        assertEquals("k argument 0 is I32; the kernel's parameter 0 is PTR", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> a.reset(K).ptr(1L).i32(2).finish());
        assertEquals("k takes 5 arguments, got 2", e.getMessage());
        KernelSpec one = KernelSpec.of("one", I32);
        e = assertThrows(IllegalArgumentException.class, () -> a.reset(one).i32(1).i32(2));
        assertEquals("one takes 1 arguments; got more", e.getMessage());
        assertThrows(IllegalStateException.class, () -> new KernelArgs().i32(1));
    }

    @Test
    void specWiderThanTheBlock_refused() {
        KernelParam[] many = new KernelParam[KernelArgs.MAX_PARAMS + 1];
        java.util.Arrays.fill(many, I32);
        assertThrows(IllegalArgumentException.class, () -> KernelSpec.of("wide", many));
        int widest = KernelSpecs.ALL.stream().mapToInt(k -> k.params().size()).max().orElseThrow();
        assertTrue(widest <= KernelArgs.MAX_PARAMS, "widest kernel has " + widest);
    }

    /** A JCuda device pointer's address as a number: what a launch writes for a buffer argument. */
    @Test
    void deviceAddress_readsNativePointerPlusOffset() {
        CUdeviceptr p = new CUdeviceptr();   // never allocated: address 0
        assertEquals(0L, DeviceAddress.of(p));
        assertEquals(4096L, DeviceAddress.of(p.withByteOffset(4096)));
        assertEquals(4096L + 24, DeviceAddress.of(p.withByteOffset(4096).withByteOffset(24)));
    }
}
