"""The commands: one function per user operation, the library API (docs/python-api.md).

Each takes the loaded configuration first, does the whole job (target resolution, policy,
leases, notification, audit records) and returns a result object; failures raise
:class:`~datasafe.errors.DatasafeError` subclasses carrying their exit code. Storage commands
take ``repo=`` (default: the configured storage, opened by :func:`repository.open_repository`).

- ``repository``: the repository a command works on (storage location, keys)
- ``settings``: lock settings, retention overrides, Object Lock period and reporting from the config
- ``backup``: ``backup`` (with ``--prune``, metrics and pings)
- ``restore``: ``restore``, and the audited policy decision every restore path takes
- ``verify``: ``verify`` (one, latest, all, since last) and the scratch check of ``--deep``
- ``snapshots``: ``list``, ``show``, ``diff`` and ``tag``
- ``prune``: ``prune`` and ``forget``
- ``check``: ``check`` (freshness for monitoring)
- ``fleet``: ``backup --all``, ``verify --all-sources``, ``prune --all`` (every source, several at once)
- ``deploy``: ``deploy kubernetes`` (the fleet's manifests)
- ``mask``: ``mask`` (policy, masking, then the restore into ``--target``)
- ``refresh``: ``refresh`` of a non-production environment
- ``rules``: ``rules init``, ``rules check`` and ``transformers``
- ``inspect``: ``scan`` and ``leaks``
- ``audit_trail``: ``audit`` (records, and ``--verify``)
- ``report``: ``report`` (the evidence report's data)
- ``keys``: ``key generate`` and ``key show``
- ``demo``: ``demo`` on a generated SQLite shop
"""
