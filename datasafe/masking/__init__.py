"""Masking: rules that turn a snapshot into an anonymized copy.

The pieces, one concept per module:

- :mod:`datasafe.masking.rules`: the rules file (YAML) and its canonical model, coverage checks.
- :mod:`datasafe.masking.transformers`: the registry of transformers, keyed by rule name.
- :mod:`datasafe.masking.types`: how a column and a cell look to a transformer (:class:`ColumnInfo`, ``fit``).
- :mod:`datasafe.masking.keyed`: the HMAC derivations every masked value comes from.
- :mod:`datasafe.masking.keys`: where the secret masking key comes from.
"""
