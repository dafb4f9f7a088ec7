"""The command line: click commands that parse arguments, call one command function and render its result.

- ``__main__``: ``python -m datasafe.cli``
- ``main``: the ``datasafe`` group and the entry point; registers every command
- ``group``: the click group class, global options and the mapping of errors to exit codes
- ``state``: the state shared by commands: output mode, progress bars, JSON output
- ``commands``: backup, restore, verify, check and the other snapshot commands
- ``snapshots``: list, show, diff, tag
- ``masking``: mask and the ``rules`` commands
- ``environments``: refresh and the environment commands
- ``scan``, ``leaks``, ``report``, ``keys``, ``ops``: the commands of those names
- ``options``: click option groups shared by commands
- ``fleet``: what the runs over every source share (``--concurrency``, ``--per-server``, the summary)
- ``deploy``: ``deploy kubernetes``
- ``output``: rendering of results and logs
"""
