/**
 * Checkpoint loading: safetensors files memory-mapped with FFM, Hugging Face sharded checkpoints, conversion of
 * F16 and DeepSeek-V3 block-scaled FP8 weights to what the kernels read, and writers for test, default and
 * benchmark models. Model code uses {@link io.expertmesh.core.safetensors.Checkpoint}; the rest is plumbing.
 */
package io.expertmesh.core.safetensors;
