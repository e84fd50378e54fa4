from __future__ import annotations

import os

# Output must not depend on the terminal: no colour, fixed width.
os.environ["NO_COLOR"] = "1"
os.environ["COLUMNS"] = "100"
os.environ.pop("FORCE_COLOR", None)
