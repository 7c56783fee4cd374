/** The router service: attention, gating, dispatch to expert workers. */
package io.expertmesh.router;
