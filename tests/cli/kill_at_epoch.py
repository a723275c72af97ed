"""``python kill_at_epoch.py K ARGS...``: runs ``tfp-realnvp ARGS...`` and SIGKILLs the process
as it is about to back up epoch K, as a preemption would: epochs up to K - 1 are backed up whole,
epoch K is lost."""

import os
import signal
import sys


def main() -> int:
    from tfp_realnvp import cli, resume

    kill_at, save = int(sys.argv[1]), resume.TrainingBackup.save

    def die_before_saving(self, epochs_done):
        if epochs_done == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        save(self, epochs_done)

    resume.TrainingBackup.save = die_before_saving
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
