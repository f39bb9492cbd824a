"""Run rkgen's command line in-process for the tests: ``run(capsys, *argv) -> (exit status, stdout, stderr)``."""

from rkgen.cli import main


def run(capsys, *argv):
    """main(argv) -> (exit status, stdout, stderr); argparse's exits become statuses too."""
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err
