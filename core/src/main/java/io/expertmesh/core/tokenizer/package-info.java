/**
 * Text in and out of the model: {@link io.expertmesh.core.tokenizer.ModelTokenizer} wraps the Hugging
 * Face tokenizer of a model directory plus its config files and chat template,
 * {@link io.expertmesh.core.tokenizer.IncrementalDetokenizer} streams generated text without splitting
 * characters, and {@link io.expertmesh.core.tokenizer.TokenizerResources} ships the DeepSeek-V3
 * tokenizer inside the jar.
 */
package io.expertmesh.core.tokenizer;
