"""Snapshots in a repository: manifests, chunks, encryption, provenance and verification records.

- ``manifest``: the manifest model (format 1) and its self-digest
- ``chunks``: cutting a table's row stream into compressed, digested chunks and reading them back
- ``crypto``: age encryption of a snapshot's objects (recipients, passphrase, key ring)
- ``provenance``: a manifest's HMAC under the policy key
- ``repository``: the snapshots under a storage location: listing, writing, committing, deleting
- ``location``: opening the repository at a storage location with the configuration's storage settings
- ``verification``: the records of verify runs stored next to a snapshot
- ``check``: checking a snapshot's chunks against its manifest
"""
