"""CWRU bearing fault diagnosis: the Case Western Reserve 12 kHz drive-end recordings
(task ``cwru``) and a physics-based simulator writing the same file layout (``cwru-sim``).

Modules: :mod:`.catalogue` (which file holds which condition), :mod:`.matfile` (read one
``.mat`` file), :mod:`.windows` (cut and split recordings), :mod:`.simulator` (write
simulated files), :mod:`.models` (1-D CNN), :mod:`.task` (the registered tasks).
Nothing here imports scipy at import time, so listing tasks stays cheap.
"""
