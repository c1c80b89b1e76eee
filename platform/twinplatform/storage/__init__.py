"""Storage: one narrow seam (`base.StorageBackend`) to the object store, and the local mirror of it.

Modules: `base` (the protocol), `local` (file:// folder store), `s3` (S3 and S3-compatible stores) with
`s3_errors` (boto3 errors -> platform errors), `registry` (URL scheme -> backend, `open_backend`),
`mirror` (a worker's verified local copy of keys), `keys` (the key rules every backend enforces),
and the helpers `checksum`, `atomic` and `locking`.
Nothing heavy is imported here: `import twinplatform.storage` never loads boto3.
"""
