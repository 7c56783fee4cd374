package io.expertmesh.cuda;

/** A CUDA driver call failed, or a kernel was asked for something it cannot do. */
public final class CudaException extends RuntimeException {
    public CudaException(String message) {
        super(message);
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
