#!/usr/bin/env python3
"""The collective alone: summing tiny's gradients (7,487,296 floats, in the trainer's buckets of
2^24 values) across the ranks, after a barrier so that waiting for a slower rank is not counted.
Tells how much of a step's `sync_ms` (metrics.csv) is communication and how much is imbalance.

    mpirun -np 2 python allreduce_bench.py      (mpi4py and numpy in a virtual environment)
"""
import time, statistics, numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
buf = np.ones(7487296, dtype=np.float32)
times = []
for i in range(25):
    comm.Barrier()
    t = time.perf_counter()
    for start in range(0, buf.size, 1 << 24):
        comm.Allreduce(MPI.IN_PLACE, buf[start:start + (1 << 24)], op=MPI.SUM)
    times.append(time.perf_counter() - t)
if comm.rank == 0:
    print("allreduce of %.1f MB over %d ranks: median %.1f ms (min %.1f)" % (buf.nbytes / 1e6, comm.size, 1000 * statistics.median(times[5:]), 1000 * min(times)))
