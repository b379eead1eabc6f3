"""Write the bytecode of what the suite imports, once, before the suite starts (tests/run_suites.sh).

A fresh clone's venvs hold no bytecode (pip installs with --no-compile). Without this, the suite's
processes compile on first import, several at once (Ray's workers and agents, the CLI's
subprocesses, the notebooks' kernel), and a suite on a fresh clone took markedly longer than a
second run in it (the commit that added this has the measurements). One process importing every module of
the package and the notebooks' stack, and a local Ray with its workers, compiles nearly all of it
once.

    python tests/warm_bytecode.py
"""

import importlib
import pkgutil

import circuitsvis  # noqa: F401
import hypothesis  # noqa: F401
import ipykernel.kernelapp  # noqa: F401
import matplotlib.pyplot  # noqa: F401
import nbclient  # noqa: F401
import ray

import induction_bigram


@ray.remote
def _in_a_worker() -> None:
    import induction_bigram.sweeps.execute  # noqa: F401


if __name__ == "__main__":
    for module in pkgutil.walk_packages(induction_bigram.__path__, "induction_bigram."):
        if module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # the other TransformerLens version's backend modules (model/, hooks/)
            pass
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    ray.get([_in_a_worker.remote() for _ in range(2)])
    ray.shutdown()
