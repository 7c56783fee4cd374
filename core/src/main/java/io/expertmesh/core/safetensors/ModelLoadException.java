package io.expertmesh.core.safetensors;

/**
 * A checkpoint that cannot be loaded as asked: a missing or malformed file, a missing tensor, a shape or dtype the
 * model code did not expect.
 *
 * <p>Unchecked because nothing at a call site can repair a checkpoint; the only useful handling is to stop and show
 * the message, so every message names the tensor (where there is one) and the file it came from.
 */
public class ModelLoadException extends RuntimeException {

    public ModelLoadException(String message) {
        super(message);
    }

    public ModelLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
