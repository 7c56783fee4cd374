package io.expertmesh.cuda;

import jcuda.Pointer;

/**
 * The address a JCuda device pointer holds, as a number for {@link KernelArgs}. JCuda keeps it in a protected
 * field; {@link Pointer}'s copy constructor, open to subclasses, carries it (and the pointer's byte offset) over.
 */
final class DeviceAddress extends Pointer {
    private DeviceAddress(Pointer p) {
        super(p);
    }

    /** The address {@code p} points at: its native pointer plus its byte offset. */
    static long of(Pointer p) {
        DeviceAddress a = new DeviceAddress(p);
        return a.getNativePointer() + a.getByteOffset();
    }
}
