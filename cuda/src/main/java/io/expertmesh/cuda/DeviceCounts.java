package io.expertmesh.cuda;

/**
 * What the host asks of the device, counted: kernel launches, copies each way and waits for the device. Per
 * forward step these are the host-side cost of the device pass (each launch and wait is microseconds of host
 * time, which at small batches is longer than the kernels themselves).
 */
public record DeviceCounts(long launches, long copiesToDevice, long copiesToHost, long syncs) {
    public static final DeviceCounts ZERO = new DeviceCounts(0, 0, 0, 0);

    public DeviceCounts minus(DeviceCounts o) {
        return new DeviceCounts(launches - o.launches, copiesToDevice - o.copiesToDevice,
                copiesToHost - o.copiesToHost, syncs - o.syncs);
    }

    public DeviceCounts plus(DeviceCounts o) {
        return new DeviceCounts(launches + o.launches, copiesToDevice + o.copiesToDevice,
                copiesToHost + o.copiesToHost, syncs + o.syncs);
    }

    @Override
    public String toString() {
        return launches + " launches, " + copiesToDevice + " copies to the device, " + copiesToHost
                + " to the host, " + syncs + " waits";
    }
}
