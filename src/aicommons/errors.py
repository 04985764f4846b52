"""The root of every expected aicommons failure, so callers can tell user errors from bugs.

Each package keeps its own errors in `<package>/errors.py`, all derived from `AicommonsError`;
the CLI prints an `AicommonsError` as one line and lets anything else keep its traceback.
Imports nothing (every package, `runtime` and `commit` included, may import it).

Hierarchy (the leaves are listed in each package's errors.py):

    AicommonsError
    ├── commit.errors:  CanonicalJsonError, MerkleError, JsonInputError
    ├── runtime.errors: ModelError (PackageError, OnnxImportError, CalibrationError, InputError)
    ├── chain.errors:   ChainError (KeystoreError, CompileError, DeployError, ExecutorError,
    │                   TransactionFailed, DevnetError, ...)
    ├── storage.errors: StorageError (ManifestError, UploadAuthError, StorageClientError, ...)
    └── sdk.errors:     SdkError (ClientError, DeploymentError, ReceiptError)
"""

from __future__ import annotations


class AicommonsError(Exception):
    """An expected failure whose message, one line, names the rule that was broken.

    Subclasses also derive from the built-in class that describes them best (`ValueError` for
    bad input, `OSError` for an unreachable or refusing peer), so generic handlers still work.
    """
