import os

# Unit tests run on the CPU in quick mode unless the caller says otherwise.
os.environ.setdefault("METARL_QUICK", "1")
os.environ.setdefault("METARL_DEVICE", "cpu")
