"""Leaves every layer may import (errors, data, console, versions); they import nothing of the pipeline."""
