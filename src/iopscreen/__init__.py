"""iopscreen: level-of-care screening for intensive outpatient programs."""

__version__ = "0.1.0"
