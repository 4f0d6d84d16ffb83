"""A sweep on a SLURM (or PBS) cluster with dask-jobqueue: run this on the login node (or in a small job of
its own); it submits worker jobs, runs the sweep on them and writes the sweep folder. See docs/cluster.md.

    pip install 'sgdsim[cluster]'
    python docs/slurm_sweep.py --out /scratch/$USER/dw-sweep --jobs 4 --account myproj --queue compute
    python docs/slurm_sweep.py ... --print-job-script   # check the batch script, submit nothing

Rerunning the same command resumes: finished runs are kept, the rest (and failed ones) run again. The
sweep folder must be on a filesystem every node sees (runs are written by the workers); the Numba cache goes
to node-local disk ($TMPDIR, else /tmp), one Numba thread per worker process.
"""
from __future__ import annotations

import argparse
import sys

from sgdsim.sweep.runner import DASK_RETRIES, make_spec, run_sweep

# every worker process: one Numba/BLAS thread, Numba's cache on node-local disk, no HDF5 locks (network FS)
PROLOGUE = [
    "export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
    'export NUMBA_CACHE_DIR="${TMPDIR:-/tmp}/$USER-sgdsim-numba"',
    "export HDF5_USE_FILE_LOCKING=FALSE",
]


def cluster(kind: str, cores: int, memory: str, walltime: str, queue: str | None, account: str | None,
            prologue: list[str]):
    """A dask-jobqueue cluster: each job is one node share with `cores` single-threaded worker processes."""
    import dask_jobqueue
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[kind]
    return cls(cores=cores, processes=cores, memory=memory, walltime=walltime, queue=queue, account=account,
               job_name="sgdsim-sweep", job_script_prologue=prologue, local_directory="${TMPDIR:-/tmp}",
               log_directory="dask-logs", python=sys.executable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="sweep folder on a shared filesystem")
    ap.add_argument("--kind", choices=("slurm", "pbs"), default="slurm")
    ap.add_argument("--jobs", type=int, default=2, help="batch jobs to submit")
    ap.add_argument("--cores", type=int, default=8, help="cores (= worker processes) per job")
    ap.add_argument("--memory", default="16GB", help="memory per job")
    ap.add_argument("--walltime", default="02:00:00")
    ap.add_argument("--queue", help="partition (SLURM) or queue (PBS)")
    ap.add_argument("--account", help="project to charge")
    ap.add_argument("--print-job-script", action="store_true", help="print the batch script and exit")
    args = ap.parse_args()

    # the study: SGD temperature on the double well over learning rate and batch size, 4 seeds each
    spec = make_spec("double-well", {"lr": "0.01,0.02,0.05,0.1", "batch": "1,2,4,8"},
                     fixed={"particles": 20000, "steps": 20000}, replicates=4, seed=2024)

    from distributed import Client
    with cluster(args.kind, args.cores, args.memory, args.walltime, args.queue, args.account, PROLOGUE) as c:
        if args.print_job_script:
            print(c.job_script())
            return
        c.scale(jobs=args.jobs)
        with Client(c) as client:
            result = run_sweep(spec, args.out, client.get_executor(pure=False, retries=DASK_RETRIES),
                               resume=True, numba_threads=1)
    print("\n".join(result.report()))
    sys.exit(1 if result.unfinished else 0)


if __name__ == "__main__":
    main()
