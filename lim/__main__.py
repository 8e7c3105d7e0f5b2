import sys

from lim.process import main

sys.exit(main())
