package io.expertmesh.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * One thread's kernel-argument block in native memory, in the form {@code cuLaunchKernel} takes: {@link #slots()}
 * is an array of {@link #MAX_PARAMS} addresses, entry i pointing at the 8-byte value slot i. Both are allocated
 * once and only the values are written per launch: no boxed argument, no {@code Pointer.to(new int[]{v})} per
 * argument, no pointer array per launch (the driver copies the values when the launch is issued, so the block
 * can be refilled for the next launch at once). Each argument is checked against the kernel's
 * {@link KernelSpec} as it is added, and the count when the launch is issued. Not thread-safe: one per thread.
 */
public final class KernelArgs {
    /** Most parameters of any kernel (the widest, {@code head_linear_*}, has 12). */
    public static final int MAX_PARAMS = 16;
    private static final long SLOT = 8;

    private final MemorySegment values;
    private final MemorySegment slots;
    private KernelSpec spec;
    private int count;

    public KernelArgs() {
        Arena arena = Arena.ofAuto();
        values = arena.allocate(MAX_PARAMS * SLOT, SLOT);
        slots = arena.allocate(MAX_PARAMS * SLOT, SLOT);
        for (int i = 0; i < MAX_PARAMS; i++) {
            slots.set(ValueLayout.JAVA_LONG, i * SLOT, values.address() + i * SLOT);
        }
    }

    /** Starts the arguments of a launch of {@code kernel} (an unfinished earlier one is dropped). */
    public KernelArgs reset(KernelSpec kernel) {
        spec = kernel;
        count = 0;
        return this;
    }

    /** The next argument, a device address. */
    public KernelArgs ptr(long address) {
        slot(KernelParam.PTR).set(ValueLayout.JAVA_LONG, (count++) * SLOT, address);
        return this;
    }

    public KernelArgs i32(int v) {
        slot(KernelParam.I32).set(ValueLayout.JAVA_INT, (count++) * SLOT, v);
        return this;
    }

    public KernelArgs f32(float v) {
        slot(KernelParam.F32).set(ValueLayout.JAVA_FLOAT, (count++) * SLOT, v);
        return this;
    }

    private MemorySegment slot(KernelParam kind) {
        if (spec == null) {
            throw new IllegalStateException("no launch started");
        }
        if (count >= spec.params().size()) {
            throw new IllegalArgumentException(spec.name() + " takes " + spec.params().size() + " arguments; got more");
        }
        KernelParam want = spec.params().get(count);
        if (want != kind) {
            throw new IllegalArgumentException(spec.name() + " argument " + count + " is " + kind
                    + "; the kernel's parameter " + count + " is " + want);
        }
        return values;
    }

    /** Checks that every parameter got its argument; the kernel the arguments are for. */
    public KernelSpec finish() {
        if (spec == null) {
            throw new IllegalStateException("no launch started");
        }
        if (count != spec.params().size()) {
            throw new IllegalArgumentException(spec.name() + " takes " + spec.params().size() + " arguments, got "
                    + count);
        }
        KernelSpec done = spec;
        spec = null;
        return done;
    }

    /** The value slots (read back by tests). */
    MemorySegment values() {
        return values;
    }

    /** The address array {@code cuLaunchKernel}'s kernelParams points at, as a direct buffer (JCuda's form). */
    ByteBuffer slotsBuffer() {
        return slots.asByteBuffer();
    }

    MemorySegment slots() {
        return slots;
    }
}
