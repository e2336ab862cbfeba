"""The spark-submit main file: ``spark-submit [...] dredge_submit.py <command> [args]``.

``<command>`` is a ``dredge`` subcommand (``stream``, ``refresh-ownership``, ``dq``, ...). The
package itself comes from the installed wheel, or from ``--py-files dredge-*.whl``.
"""

import sys

from spark_jobs.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
