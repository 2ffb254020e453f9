"""Run a command and print its peak resident memory (KiB) as the last stderr line."""

import resource
import subprocess
import sys

completed = subprocess.run(sys.argv[1:], check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"peak_kib={peak}", file=sys.stderr)
sys.exit(completed.returncode)
