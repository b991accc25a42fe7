"""The use cases, one module per command group: what a command does, without any CLI.

``secrets`` (set, get, list, delete, import), ``exec`` (exec and the merged
set export and inject print), ``info`` (where, scopes, the store's team id).
They take plain values, call the library, and return data or raise
``SecretStoreError``; printing and prompting stay in ``secretstore/cli/``.
"""
