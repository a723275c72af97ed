"""The ``tfp-realnvp`` command line: ``train``, ``sample`` and ``log-prob``.

Every argument, input file and output location (and, for ``train``, the ``cli`` extra's
matplotlib and scikit-learn) is checked before TensorFlow is imported, so a refusal takes a
fraction of a second and prints exactly one line, ``tfp-realnvp: error: ...``, with exit
status 2, having changed nothing. Outputs are written atomically (a run directory
appears whole or not at all) and replace only what `tfp_realnvp.cli.rundir` proves is ours. SIGINT
and SIGTERM stop cleanly with one line and exit status 130 / 143, removing staged files; so
does a closed standard output (``| head``), with status 141.
TensorFlow's start-up log stays off the terminal unless ``--verbose`` or the user's own
``TF_CPP_MIN_LOG_LEVEL`` asks for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from tfp_realnvp.cli import rundir
from tfp_realnvp.cli.backup_files import BackupError
from tfp_realnvp.cli.cluster import ClusterError, WorkerLost
from tfp_realnvp.cli.parser import EXIT_USAGE, UsageError, build_parser
from tfp_realnvp.cli.rundir import Interrupted, OutputError
from tfp_realnvp.cli.serve import cmd_log_prob, cmd_sample
from tfp_realnvp.cli.train import cmd_train
from tfp_realnvp.data import DataError

__all__ = ["main"]

COMMANDS = {"train": cmd_train, "sample": cmd_sample, "log-prob": cmd_log_prob}
# As for a writer killed by SIGPIPE, which Python turns into BrokenPipeError.
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = rundir.install_signal_handlers()
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, OutputError, BackupError, ClusterError) as e:
        print(f"tfp-realnvp: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `tfp-realnvp train ... | head`: the reader left
        # Python would report the pipe again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):  # a stdout with no file behind it
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        # (Outputs are published whole or not at all: one published before the last line
        # was printed stays.)
        print(
            "tfp-realnvp: stopped: standard output was closed (its reader, such as `| head`, "
            "exited)",
            file=sys.stderr,
        )
        return EXIT_CLOSED_PIPE
    except (OSError, WorkerLost) as e:  # the disk filled, a worker stopped: no traceback
        print(f"tfp-realnvp: error: {e}", file=sys.stderr)
        return 1
    except BaseException as e:
        # The signal may reach us wrapped by TensorFlow or pybind11 as another exception.
        signum = rundir.received_signal() or getattr(e, "signum", None)
        if signum is None:
            raise
        name = Interrupted(signum)
        print(f"tfp-realnvp: stopped by {name}; no output was written", file=sys.stderr)
        return 128 + signum
    finally:
        rundir.restore_signal_handlers(previous)
