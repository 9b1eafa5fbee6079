"""Names the command line offers for options whose implementations import TensorFlow.

They live here, free of TensorFlow, so that the parser (and `tfmeta --help`) stays fast;
the implementing modules take their lists from here.
"""
STRATEGIES = ("default", "mirrored", "multi-worker")  # tfmeta.distribute.from_name
SINGLE_PROCESS_STRATEGIES = ("default", "mirrored")   # tfmeta tune runs in one process
OPTIMIZERS = ("adam", "lazy-adam")                    # tfmeta.optimizers.make
TUNERS = ("random", "bayesian", "hyperband", "grid")  # tfmeta.tuning.tuner
