package io.expertmesh.core.tensor;


/** Named weights of a checkpoint, by Hugging Face tensor name; implemented by the safetensors checkpoint. */
public interface WeightSource {

    boolean has(String name);

    /** The 2-D weight {@code name}, checked to be {@code rows × cols}. */
    Matrix matrix(String name, int rows, int cols);

    /** The 1-D weight {@code name} as floats, checked to hold {@code length} elements. */
    float[] vector(String name, int length);

    /**
     * Lets go of the resident pages of mapped files (they stay in the page cache; whatever is read later faults
     * back in), for after a load that copied the weights it reads (woven or quantized): otherwise the bytes read
     * while copying count twice in the process's resident memory. No-op for sources that map nothing.
     */
    default void releaseResident() {
    }
}
