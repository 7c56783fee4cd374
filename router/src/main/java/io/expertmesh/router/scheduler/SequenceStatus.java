package io.expertmesh.router.scheduler;

/** Where a sequence is in the scheduler. A preempted sequence is WAITING again. */
public enum SequenceStatus {
    WAITING,
    RUNNING,
    FINISHED
}
