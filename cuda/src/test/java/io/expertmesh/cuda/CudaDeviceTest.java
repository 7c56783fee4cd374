package io.expertmesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.expertmesh.core.kernel.ComputePool;
import org.junit.jupiter.api.Test;

class CudaDeviceTest {

    @Test
    void probe_anyMachine_neverThrowsAndIsCached() {
        CudaProbe first = CudaDevice.probe();
        assertNotNull(first);
        assertSame(first, CudaDevice.probe());
        assertEquals(first.available(), CudaDevice.available());
        assertTrue(first.available() || !first.reason().isBlank());
    }

    @Test
    void get_withoutGpu_throwsWithTheProbeReason() {
        assumeFalse(CudaDevice.available(), "a GPU is present");
        CudaException e = assertThrows(CudaException.class, CudaDevice::get);
        assertEquals(CudaDevice.probe().describe(), e.getMessage());
        assertTrue(e.getMessage().startsWith("no GPU: "), e.getMessage());
    }

    @Test
    void cudaKernels_withoutGpu_failsWithTheReasonNotALinkError() {
        assumeFalse(CudaDevice.available(), "a GPU is present");
        try (ComputePool pool = ComputePool.create(1)) {
            CudaException e = assertThrows(CudaException.class, () -> new CudaKernels(pool));
            assertTrue(e.getMessage().startsWith("no GPU: "), e.getMessage());
        }
    }

    @Test
    void probe_withGpu_describesAHopperOrAmpereDevice() {
        assumeTrue(CudaDevice.available(), () -> CudaDevice.probe().describe());
        CudaProbe p = CudaDevice.probe();
        assertTrue(p.computeMajor() >= 8 && p.multiprocessors() > 0 && p.maxSharedPerBlockOptin() > 48 * 1024,
                p.toString());
    }

    @Test
    void conciseLinkError_jcudaMessage_namesTheMissingLibrary() {
        UnsatisfiedLinkError e = new UnsatisfiedLinkError("Error while loading native library \"JCudaDriver\"\n"
                + "Stack trace from the attempt to load the library as a resource:\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver-12.0.0-linux-x86_64.so: libcuda.so.1: "
                + "cannot open shared object file: No such file or directory\n\tat java.base/Foo.bar(Foo.java:1)");
        assertEquals("libcuda.so.1: cannot open shared object file", CudaDevice.conciseLinkError(e));
        assertEquals("NoClassDefFoundError: x", CudaDevice.conciseLinkError(new NoClassDefFoundError("x\nmore")));
    }
}
