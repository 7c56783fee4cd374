/** The expert worker service. */
package io.expertmesh.worker;
