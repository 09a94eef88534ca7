"""Hot reload: the policy serving now, behind one reference, swapped only for a checked one.

`core` is what both stores share (loading, the swap, the error report), `threaded` the
store a watcher thread keeps fresh, `asynchronous` the one an asyncio task keeps fresh, and
`settled` loads only from complete files.
"""

from .asynchronous import AsyncPolicyStore, awatch
from .threaded import PolicyStore, watch

__all__ = ["AsyncPolicyStore", "PolicyStore", "awatch", "watch"]
