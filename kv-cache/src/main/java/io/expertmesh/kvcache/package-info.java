/** The KV cache tier. */
package io.expertmesh.kvcache;
