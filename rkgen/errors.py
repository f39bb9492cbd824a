"""The one exception type rkgen raises for bad input, at any step of the chain.

The command line turns it into a single line ``rkgen: error: <message>`` and exit status 2.
"""


class RkgenError(Exception):
    """Bad input or a failed request, with a message meant for a person.

    The message names what is wrong and where (file, field, entry), in one line.
    """


class SolveFailure(RkgenError):
    """An implicit stage solve did not converge: the network's output, and so any gradient, would not be exact.

    The trainer, the torch and JAX layers and prediction raise this one class (a line for a person, as every
    RkgenError), never a result computed from unconverged stages."""


def count(n: int, word: str, many: str | None = None) -> str:
    """``n`` things in a message, singular or plural: '1 column', '2 columns', '2 entries'.

    >>> count(1, "row"), count(3, "row"), count(2, "entry", "entries")
    ('1 row', '3 rows', '2 entries')
    """
    return f"{n} {word if n == 1 else many or word + 's'}"
