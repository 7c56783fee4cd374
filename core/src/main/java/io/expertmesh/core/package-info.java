/** Model core: everything needed to run an MoE model in one process, free of gRPC and Hazelcast. */
package io.expertmesh.core;
