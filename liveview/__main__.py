import sys

from liveview.process import main

sys.exit(main())
