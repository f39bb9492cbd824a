"""The one exception type rkgen raises for bad input, at any step of the chain.

The command line turns it into a single line ``rkgen: error: <message>`` and exit status 2.
"""


class RkgenError(Exception):
    """Bad input or a failed request, with a message meant for a person.

    The message names what is wrong and where (file, field, entry), in one line.
    """
