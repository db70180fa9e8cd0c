# Writes the numpy-made fixtures the dataset tests read (run with a Python
# that has numpy; the files are committed, tests do not need numpy).
import numpy as np

# Uncompressed (numpy.savez), float32 inputs, int32 labels, an extra array.
np.savez("numpy-savez.npz",
         x=(np.arange(12, dtype=np.float32) * 0.5).reshape(3, 2, 2),
         y=np.array([2, 0, 1], dtype=np.int32),
         extra=np.ones(5))
# Compressed, big-endian float64 inputs, labels of shape [N, 1].
np.savez_compressed("numpy-compressed-be.npz",
                    x=(np.arange(24, dtype=">f8") - 3.25).reshape(4, 6),
                    y=np.array([[9], [8], [7], [6]], dtype=np.uint8))
# Inputs only, uint8, rank 1 samples.
np.savez_compressed("numpy-nolabels.npz", x=np.arange(10, dtype=np.uint8).reshape(5, 2))
