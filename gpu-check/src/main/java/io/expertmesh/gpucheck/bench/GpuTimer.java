package io.expertmesh.gpucheck.bench;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import io.expertmesh.cuda.CudaDevice;
import java.util.Arrays;
import jcuda.driver.CUevent;

/** Times GPU work with device events (launches are asynchronous): warm-up, then the median of many runs. */
final class GpuTimer {
    private GpuTimer() {
    }

    /** Median seconds of one run of {@code work}, after {@code warmup} untimed runs. */
    static double median(CudaDevice device, int warmup, int reps, Runnable work) {
        device.makeCurrent();
        for (int i = 0; i < warmup; i++) {
            work.run();
        }
        device.synchronize();
        CUevent start = new CUevent();
        CUevent end = new CUevent();
        cuEventCreate(start, 0);
        cuEventCreate(end, 0);
        double[] t = new double[reps];
        float[] ms = {0};
        for (int i = 0; i < reps; i++) {
            cuEventRecord(start, CudaDevice.DEFAULT_STREAM);
            work.run();
            cuEventRecord(end, CudaDevice.DEFAULT_STREAM);
            cuEventSynchronize(end);
            cuEventElapsedTime(ms, start, end);
            t[i] = ms[0] / 1e3;
        }
        device.synchronize();
        cuEventDestroy(start);
        cuEventDestroy(end);
        Arrays.sort(t);
        return t[reps / 2];
    }
}
