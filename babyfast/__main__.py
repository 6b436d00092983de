import sys

from babyfast.cli import main

sys.exit(main())
