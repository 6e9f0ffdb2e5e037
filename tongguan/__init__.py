"""tongguan: the composition root (create_app, CLI)."""

import os

# One BLAS thread: our numeric work is one small product per request (a face search, a grid lookup). OpenBLAS's
# extra thread only busy-waits after each product and took 60–100 ms of CPU per face identify on 2 cores
# (bench/README.md, face_identify). Set before numpy loads, which is why it is here, in the package every command
# and server process imports first; an operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
