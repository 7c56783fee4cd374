package io.expertmesh.core.tensor;


/** Named weights of a checkpoint, by Hugging Face tensor name; implemented by the safetensors checkpoint. */
public interface WeightSource {

    boolean has(String name);

    /** The 2-D weight {@code name}, checked to be {@code rows × cols}. */
    Matrix matrix(String name, int rows, int cols);

    /** The 1-D weight {@code name} as floats, checked to hold {@code length} elements. */
    float[] vector(String name, int length);
}
